// The CLI's exit codes for each error the client library can return (docs/cli.md).
#include <catch2/catch.hpp>

#include "cli/exit_codes.hpp"

using keyward::ErrorCode;
using namespace keyward::cli;

TEST_CASE("exit codes: transport failures are 3, policy 4, missing key 5, device 6, the rest 1") {
    CHECK(exit_code_for(ErrorCode::ok) == 0);
    CHECK(exit_code_for(ErrorCode::agent_unreachable) == 3);
    CHECK(exit_code_for(ErrorCode::timeout) == 3);
    CHECK(exit_code_for(ErrorCode::connection_lost) == 3);
    CHECK(exit_code_for(ErrorCode::access_denied) == 4);
    CHECK(exit_code_for(ErrorCode::no_such_key) == 5);
    CHECK(exit_code_for(ErrorCode::device_error) == 6);
    CHECK(exit_code_for(ErrorCode::device_unavailable) == 6);
    for (auto code : {ErrorCode::bad_request, ErrorCode::unsupported_version, ErrorCode::unknown_operation,
                      ErrorCode::unsupported_scheme, ErrorCode::invalid_argument, ErrorCode::key_exists,
                      ErrorCode::busy, ErrorCode::internal, ErrorCode::no_such_token, ErrorCode::protocol_error})
        CHECK(exit_code_for(code) == 1);
}
