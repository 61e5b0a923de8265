// Test driver: runs the ACME issuer once, the way the lifecycle does, with device keys
// reached through a real keywardd (keyward::Client). Used by test_pebble.py.
//
//   acme_issue --socket S --config FILE --state-dir DIR --csr CSR.pem --key NAME
//              [--cookie URL] --cert OUT --chain OUT
// FILE holds an [issuer] table. Prints "<kind>: <message>" and, when pending,
// "cookie: URL". Exit: 0 issued, 10 pending, 11 rejected, 12 unreachable,
// 13 misconfigured, 2 usage or config error.
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "agent/lifecycle/acme/acme_issuer.hpp"
#include "ipc/client.hpp"

using keyward::lifecycle::IssueResult;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

const char* kind_name(IssueResult::Kind k) {
    switch (k) {
        case IssueResult::Kind::issued: return "issued";
        case IssueResult::Kind::pending: return "pending";
        case IssueResult::Kind::rejected: return "rejected";
        case IssueResult::Kind::unreachable: return "unreachable";
        case IssueResult::Kind::misconfigured: return "misconfigured";
    }
    return "?";
}

}  // namespace

int main(int argc, char** argv) {
    std::map<std::string, std::string> opt;
    for (int i = 1; i + 1 < argc; i += 2) opt[argv[i]] = argv[i + 1];
    for (const char* need : {"--socket", "--config", "--state-dir", "--csr", "--key", "--cert", "--chain"})
        if (!opt.count(need)) {
            std::cerr << "acme_issue: missing " << need << "\n";
            return 2;
        }
    toml::table root;
    try {
        root = toml::parse_file(opt["--config"]);
    } catch (const toml::parse_error& e) {
        std::cerr << "acme_issue: " << e.description() << "\n";
        return 2;
    }
    const toml::table* issuer = root["issuer"].as_table();
    if (issuer == nullptr) {
        std::cerr << "acme_issue: no [issuer] table\n";
        return 2;
    }
    keyward::Status checked = keyward::lifecycle::check_acme_issuer(*issuer, opt["--config"], "issuer");
    if (!checked.ok()) {
        std::cout << "config: " << checked.message << "\n";
        return 2;
    }
    std::unique_ptr<keyward::lifecycle::Issuer> acme =
        keyward::lifecycle::make_acme_issuer(*issuer, opt["--state-dir"]);

    keyward::ClientOptions options;
    options.socket_path = opt["--socket"];
    keyward::Client client(options);
    keyward::lifecycle::KeyAccess keys;
    keys.describe = [&](const std::string& name) { return client.get_key(name); };
    keys.sign = [&](const std::string& name, keyward::ipc::Scheme scheme, std::span<const uint8_t> digest) {
        return client.sign(name, scheme, digest);
    };
    keys.generate = [&](const std::string& name, const std::string& type, const std::string& token) {
        return client.generate_key({name, type, token});
    };
    keys.destroy = [&](const std::string& name) { return client.delete_key(name); };

    keyward::lifecycle::IssueRequest request;
    request.identity = "test";
    request.key = opt["--key"];
    request.csr_pem = read_file(opt["--csr"]);
    request.keys = &keys;
    IssueResult result;
    if (opt.count("--cookie")) {
        request.cookie = opt["--cookie"];
        result = acme->poll(request);
    } else {
        result = acme->submit(request);
    }
    std::cout << kind_name(result.kind) << ": " << result.message << "\n";
    if (!result.cookie.empty()) std::cout << "cookie: " << result.cookie << "\n";
    if (result.retry_after.count() > 0) std::cout << "retry_after: " << result.retry_after.count() << "\n";
    switch (result.kind) {
        case IssueResult::Kind::issued: {
            std::ofstream(opt["--cert"], std::ios::binary) << result.cert_pem;
            std::ofstream(opt["--chain"], std::ios::binary) << result.chain_pem;
            return 0;
        }
        case IssueResult::Kind::pending: return 10;
        case IssueResult::Kind::rejected: return 11;
        case IssueResult::Kind::unreachable: return 12;
        case IssueResult::Kind::misconfigured: return 13;
    }
    return 1;
}
