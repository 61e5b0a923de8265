// The keyward OpenSSL 3 provider: entry point and fixed algorithm tables.
//
// Only what an agent-held key needs is offered: KEYMGMT, SIGNATURE, STORE, DECODER and
// an SPKI ENCODER. No digests, ciphers, RNG, key exchange or TLS groups, so everything
// that is not our key keeps using the default provider. The tables are constant and
// returned without talking to the agent; the connection is made on first use.
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include "provider/algorithms.hpp"
#include "provider/dispatch.hpp"
#include "provider/guard.hpp"
#include "provider/key.hpp"

namespace keyward::provider {

namespace {

constexpr const char* kProps = "provider=keyward";

const OSSL_ALGORITHM kKeymgmt[] = {
    {key_kind_algorithm_names(KeyKind::ec), kProps, keymgmt_ec_functions, "keyward agent-held EC key"},
    {key_kind_algorithm_names(KeyKind::rsa), kProps, keymgmt_rsa_functions, "keyward agent-held RSA key"},
    {key_kind_algorithm_names(KeyKind::rsa_pss), kProps, keymgmt_rsa_pss_functions, "keyward agent-held RSA-PSS key"},
    {nullptr, nullptr, nullptr, nullptr},
};

const OSSL_ALGORITHM kSignature[] = {
    {"ECDSA", kProps, signature_ecdsa_functions, "keyward ECDSA with an agent-held key"},
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", kProps, signature_rsa_functions,
     "keyward RSA (PKCS#1 v1.5, PSS) with an agent-held key"},
    {nullptr, nullptr, nullptr, nullptr},
};

const OSSL_ALGORITHM kStore[] = {
    {"keyward", kProps, store_functions, "keyward:NAME URIs for agent-held keys"},
    {nullptr, nullptr, nullptr, nullptr},
};

const OSSL_ALGORITHM kDecoder[] = {
    {"DER", "provider=keyward,input=pem", decoder_pem_functions, "keyward key reference, PEM to DER"},
    {key_kind_algorithm_names(KeyKind::ec), "provider=keyward,input=der,structure=keyward", decoder_ec_functions,
     "keyward key reference to EC key"},
    {key_kind_algorithm_names(KeyKind::rsa), "provider=keyward,input=der,structure=keyward", decoder_rsa_functions,
     "keyward key reference to RSA key"},
    {key_kind_algorithm_names(KeyKind::rsa_pss), "provider=keyward,input=der,structure=keyward",
     decoder_rsa_pss_functions, "keyward key reference to RSA-PSS key"},
    {nullptr, nullptr, nullptr, nullptr},
};

#define KEYWARD_SPKI_PROPS(out) "provider=keyward,output=" out ",structure=SubjectPublicKeyInfo"
const OSSL_ALGORITHM kEncoder[] = {
    {key_kind_algorithm_names(KeyKind::ec), KEYWARD_SPKI_PROPS("der"), encoder_ec_spki_der_functions, nullptr},
    {key_kind_algorithm_names(KeyKind::ec), KEYWARD_SPKI_PROPS("pem"), encoder_ec_spki_pem_functions, nullptr},
    {key_kind_algorithm_names(KeyKind::rsa), KEYWARD_SPKI_PROPS("der"), encoder_rsa_spki_der_functions, nullptr},
    {key_kind_algorithm_names(KeyKind::rsa), KEYWARD_SPKI_PROPS("pem"), encoder_rsa_spki_pem_functions, nullptr},
    {key_kind_algorithm_names(KeyKind::rsa_pss), KEYWARD_SPKI_PROPS("der"), encoder_rsa_pss_spki_der_functions,
     nullptr},
    {key_kind_algorithm_names(KeyKind::rsa_pss), KEYWARD_SPKI_PROPS("pem"), encoder_rsa_pss_spki_pem_functions,
     nullptr},
    {nullptr, nullptr, nullptr, nullptr},
};

const OSSL_ITEM kReasonStrings[] = {
    {static_cast<unsigned int>(Reason::agent_unreachable), const_cast<char*>("keyward agent not reachable")},
    {static_cast<unsigned int>(Reason::access_denied), const_cast<char*>("access to key denied")},
    {static_cast<unsigned int>(Reason::no_such_key), const_cast<char*>("no such key")},
    {static_cast<unsigned int>(Reason::device_error), const_cast<char*>("key device error")},
    {static_cast<unsigned int>(Reason::unsupported), const_cast<char*>("unsupported by keyward")},
    {static_cast<unsigned int>(Reason::invalid_argument), const_cast<char*>("invalid argument")},
    {static_cast<unsigned int>(Reason::not_our_key), const_cast<char*>("not a keyward key")},
    {static_cast<unsigned int>(Reason::internal), const_cast<char*>("keyward internal error")},
    {static_cast<unsigned int>(Reason::agent_error), const_cast<char*>("keyward agent error")},
    {0, nullptr},
};

const OSSL_ALGORITHM* query_operation(void* /*provctx*/, int operation_id, int* no_cache) noexcept {
    *no_cache = 0;
    switch (operation_id) {
        case OSSL_OP_KEYMGMT: return kKeymgmt;
        case OSSL_OP_SIGNATURE: return kSignature;
        case OSSL_OP_STORE: return kStore;
        case OSSL_OP_DECODER: return kDecoder;
        case OSSL_OP_ENCODER: return kEncoder;
        default: return nullptr;
    }
}

const OSSL_ITEM* get_reason_strings(void* /*provctx*/) noexcept { return kReasonStrings; }

const OSSL_PARAM* gettable_params(void* /*provctx*/) noexcept {
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, nullptr, 0),
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, nullptr, 0),
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, nullptr, 0),
        OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, nullptr),
        OSSL_PARAM_END,
    };
    return params;
}

int get_params(void* /*provctx*/, OSSL_PARAM params[]) noexcept {
    OSSL_PARAM* p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME);
    if (p != nullptr && !OSSL_PARAM_set_utf8_ptr(p, "keyward agent-held keys")) return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION);
    if (p != nullptr && !OSSL_PARAM_set_utf8_ptr(p, KEYWARD_VERSION)) return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO);
    if (p != nullptr && !OSSL_PARAM_set_utf8_ptr(p, "keyward " KEYWARD_VERSION)) return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS);
    if (p != nullptr && !OSSL_PARAM_set_int(p, 1)) return 0;
    return 1;
}

void teardown(void* provctx) noexcept {
    guard_void([&] { delete static_cast<ProviderContext*>(provctx); });
}

const OSSL_DISPATCH kProviderFunctions[] = {
    KEYWARD_FN(OSSL_FUNC_PROVIDER_TEARDOWN, teardown),
    KEYWARD_FN(OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, gettable_params),
    KEYWARD_FN(OSSL_FUNC_PROVIDER_GET_PARAMS, get_params),
    KEYWARD_FN(OSSL_FUNC_PROVIDER_QUERY_OPERATION, query_operation),
    KEYWARD_FN(OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, get_reason_strings),
    KEYWARD_FN_END,
};

}  // namespace

}  // namespace keyward::provider

extern "C" __attribute__((visibility("default"))) int OSSL_provider_init(const OSSL_CORE_HANDLE* handle,
                                                                         const OSSL_DISPATCH* in,
                                                                         const OSSL_DISPATCH** out, void** provctx) {
    using namespace keyward::provider;
    // Nothing is on the error queue yet that could name us; failing init is the report.
    return keyward::c_boundary(0, keyward::NoReport{}, [&] {
        auto ctx = std::make_unique<ProviderContext>(handle, in);
        if (!ctx->usable()) return 0;
        *provctx = ctx.release();
        *out = kProviderFunctions;
        return 1;
    });
}
