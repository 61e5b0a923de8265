// The keyward ENGINE, for programs on Debian 12 that take hardware keys only through
// engines: curl 7.88 (--engine keyward --key-type ENG --key NAME), nginx 1.22
// (ssl_certificate_key engine:keyward:NAME), stunnel (engineId = keyward).
//
// ENGINE_load_private_key(NAME) asks the agent for the key's public half and returns an
// EVP_PKEY whose signing goes to the agent; nothing else is overridden (no digests,
// ciphers, RNG, and no process-wide defaults). The socket comes from the "SOCKET" control
// command (openssl.cnf: SOCKET = /path), else $KEYWARD_SOCKET, else the system default.
#define OPENSSL_SUPPRESS_DEPRECATED  // the ENGINE API is deprecated in 3.0, and what engines have
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "core/c_boundary.hpp"
#include "core/legacy_key.hpp"
#include "provider/engine/engine_key.hpp"

namespace keyward::engine {

namespace {

constexpr const char* kEngineId = "keyward";
constexpr const char* kEngineName = "keyward agent-held keys";
constexpr int kCmdSocket = ENGINE_CMD_BASE;

const ENGINE_CMD_DEFN kCommands[] = {
    {kCmdSocket, "SOCKET", "Path of the keyward agent socket", ENGINE_CMD_FLAG_STRING},
    {0, nullptr, nullptr, 0},
};

int error_lib = 0;
ERR_STRING_DATA reason_strings[] = {
    {0, "keyward engine"},  // the library name; packed in load_error_strings()
    {ERR_PACK(0, 0, static_cast<int>(provider::Reason::agent_unreachable)), "keyward agent not reachable"},
    {ERR_PACK(0, 0, static_cast<int>(provider::Reason::access_denied)), "access to key denied"},
    {ERR_PACK(0, 0, static_cast<int>(provider::Reason::no_such_key)), "no such key"},
    {ERR_PACK(0, 0, static_cast<int>(provider::Reason::device_error)), "key device error"},
    {ERR_PACK(0, 0, static_cast<int>(provider::Reason::unsupported)), "unsupported by keyward"},
    {ERR_PACK(0, 0, static_cast<int>(provider::Reason::invalid_argument)), "invalid argument"},
    {ERR_PACK(0, 0, static_cast<int>(provider::Reason::not_our_key)), "not a keyward key"},
    {ERR_PACK(0, 0, static_cast<int>(provider::Reason::internal)), "keyward internal error"},
    {ERR_PACK(0, 0, static_cast<int>(provider::Reason::agent_error)), "keyward agent error"},
    {0, nullptr},
};

void load_error_strings() {
    if (error_lib != 0) return;
    error_lib = ERR_get_next_error_library();
    reason_strings[0].error = ERR_PACK(error_lib, 0, 0);
    ERR_load_strings(error_lib, reason_strings);
}

// One agent connection per loaded engine, shared by every key it hands out (keys keep it
// alive after the engine is finished). The client is fork-safe and thread-safe itself.
struct EngineState {
    std::mutex mu;
    std::string socket;  // from the SOCKET command; empty: $KEYWARD_SOCKET or the default
    std::shared_ptr<keyward::Client> client;

    std::shared_ptr<keyward::Client> get_client() {
        std::lock_guard lock(mu);
        if (!client) {
            ClientOptions options;
            options.socket_path = resolve_socket_path(socket);
            options.client_name = "keyward-engine";
            client = std::make_shared<keyward::Client>(std::move(options));
            debug("agent socket " + client->socket_path());
        }
        return client;
    }
};

int engine_state_index = -1;

EngineState* state_of(ENGINE* e) { return static_cast<EngineState*>(ENGINE_get_ex_data(e, engine_state_index)); }

int engine_destroy(ENGINE* e) noexcept {
    delete state_of(e);
    ENGINE_set_ex_data(e, engine_state_index, nullptr);
    return 1;
}

int engine_init(ENGINE* e) noexcept { return state_of(e) != nullptr ? 1 : 0; }

int engine_finish(ENGINE* /*e*/) noexcept { return 1; }

// Reports an exception that reached an entry point.
void report_internal(std::string_view message) {
    raise(provider::Reason::internal, "keyward engine: " + std::string(message));
}

int engine_ctrl(ENGINE* e, int cmd, long /*i*/, void* p, void (* /*f*/)()) noexcept {
    return c_boundary(0, report_internal, [&] {
        EngineState* st = state_of(e);
        if (st == nullptr) return 0;
        if (cmd == kCmdSocket) {
            if (p == nullptr) return 0;
            std::lock_guard lock(st->mu);
            st->socket = static_cast<const char*>(p);
            st->client.reset();  // the next key load connects to the new path
            return 1;
        }
        raise(provider::Reason::invalid_argument, "keyward engine: unknown control command");
        return 0;
    });
}

EVP_PKEY* engine_load_privkey(ENGINE* e, const char* key_id, UI_METHOD* /*ui*/, void* /*cb*/) noexcept {
    return c_boundary(static_cast<EVP_PKEY*>(nullptr), report_internal, [&]() -> EVP_PKEY* {
        EngineState* st = state_of(e);
        if (st == nullptr || key_id == nullptr) return nullptr;
        std::string name = key_id;
        if (name.rfind("keyward:", 0) == 0) name.erase(0, 8);
        if (name.empty()) {
            raise(provider::Reason::invalid_argument, "keyward engine: no key name given");
            return nullptr;
        }
        return load_engine_key(e, name, st->get_client());
    });
}

// RSA keys the engine hands out carry it (EVP_PKEY_set1_engine), so OpenSSL asks here for
// their EVP_PKEY_METHOD: the one that takes PSS to the agent.
const int kPkeyNids[] = {EVP_PKEY_RSA, 0};

int engine_pkey_meths(ENGINE* /*e*/, EVP_PKEY_METHOD** pmeth, const int** nids, int nid) noexcept {
    if (pmeth == nullptr) {
        *nids = kPkeyNids;
        return 1;
    }
    *pmeth = nid == EVP_PKEY_RSA ? legacy_rsa_pkey_method() : nullptr;
    return *pmeth != nullptr ? 1 : 0;
}

bool bind(ENGINE* e, const char* id) {
    if (id != nullptr && std::string(id) != kEngineId) return false;
    load_error_strings();
    if (engine_state_index < 0) engine_state_index = ENGINE_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    if (engine_state_index < 0 || legacy_rsa_pkey_method() == nullptr) return false;
    auto* st = new (std::nothrow) EngineState;
    if (st == nullptr) return false;
    if (ENGINE_set_ex_data(e, engine_state_index, st) != 1) {
        delete st;
        return false;
    }
    return ENGINE_set_id(e, kEngineId) == 1 && ENGINE_set_name(e, kEngineName) == 1 &&
           ENGINE_set_destroy_function(e, engine_destroy) == 1 && ENGINE_set_init_function(e, engine_init) == 1 &&
           ENGINE_set_finish_function(e, engine_finish) == 1 && ENGINE_set_ctrl_function(e, engine_ctrl) == 1 &&
           ENGINE_set_cmd_defns(e, kCommands) == 1 && ENGINE_set_load_privkey_function(e, engine_load_privkey) == 1 &&
           ENGINE_set_pkey_meths(e, engine_pkey_meths) == 1;
}

}  // namespace

void raise(provider::Reason reason, std::string_view message) {
    load_error_strings();
    std::string text(message);
    debug("error: " + text);
    ERR_raise_data(error_lib, static_cast<int>(reason), "%s", text.c_str());
}

void raise_status(const Status& status, std::string_view key, const keyward::Client& client, std::string_view doing) {
    auto text = provider::describe_failure(status, key, doing, client.socket_path());
    // "keyward engine: ..." rather than the provider's "keyward: ...".
    if (text.message.rfind("keyward: ", 0) == 0) text.message.insert(7, " engine");
    raise(text.reason, text.message);
}

bool debug_enabled() noexcept {
    static const bool on = [] {
        const char* v = ::secure_getenv("KEYWARD_ENGINE_DEBUG");
        return v != nullptr && std::string(v) == "1";
    }();
    return on;
}

void debug(std::string_view message) {
    if (!debug_enabled()) return;
    std::fprintf(stderr, "keyward-engine[%d]: %.*s\n", static_cast<int>(getpid()), static_cast<int>(message.size()),
                 message.data());
}

}  // namespace keyward::engine

extern "C" {

__attribute__((visibility("default"))) int bind_engine(ENGINE* e, const char* id, const dynamic_fns* fns);
__attribute__((visibility("default"))) unsigned long v_check(unsigned long v);

// What IMPLEMENT_DYNAMIC_CHECK_FN() and IMPLEMENT_DYNAMIC_BIND_FN() expand to, written out
// so the symbols get C linkage and no exception can leave.
unsigned long v_check(unsigned long v) { return v >= OSSL_DYNAMIC_OLDEST ? OSSL_DYNAMIC_VERSION : 0; }

int bind_engine(ENGINE* e, const char* id, const dynamic_fns* fns) {
    if (ENGINE_get_static_state() != fns->static_state) {
        // Loaded by a different libcrypto instance: adopt its allocator, as the macro does.
        CRYPTO_set_mem_functions(fns->mem_fns.malloc_fn, fns->mem_fns.realloc_fn, fns->mem_fns.free_fn);
        OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr);
    }
    // Nothing useful to report before our error strings exist.
    return keyward::c_boundary(0, keyward::NoReport{}, [&] { return keyward::engine::bind(e, id) ? 1 : 0; });
}

}  // extern "C"
