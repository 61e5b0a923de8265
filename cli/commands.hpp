// The CLI's commands. Each parses its own arguments from the Context and returns the
// process exit code (cli/exit_codes.hpp).
#pragma once

#include "cli/context.hpp"

namespace keyward::cli {

int run_status(Context& ctx);
int run_keys_list(Context& ctx);
int run_keys_show(Context& ctx);
int run_keys_pubkey(Context& ctx);
int run_keys_create(Context& ctx);
int run_keys_delete(Context& ctx);
int run_keys_import(Context& ctx);
int run_keys_ref(Context& ctx);
int run_keys_cert(Context& ctx);
int run_sign(Context& ctx);
int run_csr(Context& ctx);
int run_enroll(Context& ctx);
int run_renew(Context& ctx);
int run_identities_list(Context& ctx);
int run_identities_show(Context& ctx);
int run_identities_rollback(Context& ctx);
int run_doctor(Context& ctx);
int run_identities_revoke(Context& ctx);

}  // namespace keyward::cli
