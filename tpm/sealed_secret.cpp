#include "tpm/sealed_secret.hpp"

#include <openssl/crypto.h>
#include <tss2/tss2_mu.h>

#include <array>
#include <cstring>

#include "tpm/esys.hpp"
#include "tpm/rc.hpp"
#include "tpm/salted_parent.hpp"
#include "tpm/session.hpp"

namespace keyward::tpm {
namespace {

constexpr std::array<uint8_t, 7> kMagic = {'K', 'W', 'S', 'E', 'A', 'L', 1};
constexpr size_t kMaxSecret = 128;  // MAX_SYM_DATA: what a sealed data object holds

// A keyed-hash object with no scheme: sealed data, usable only by its own TPM (fixedTPM,
// fixedParent), authorised with its (empty) auth value through a session.
TPM2B_PUBLIC sealed_data_template() {
    TPM2B_PUBLIC t{};
    t.publicArea.type = TPM2_ALG_KEYEDHASH;
    t.publicArea.nameAlg = TPM2_ALG_SHA256;
    t.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_USERWITHAUTH;
    t.publicArea.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
    return t;
}

std::vector<uint8_t> encode(TPM2_HANDLE parent, const TPM2B_PUBLIC& pub, const TPM2B_PRIVATE& priv) {
    std::vector<uint8_t> out(kMagic.begin(), kMagic.end());
    uint8_t buf[sizeof(TPM2_HANDLE) + sizeof(TPM2B_PUBLIC) + sizeof(TPM2B_PRIVATE)];
    size_t off = 0;
    if (Tss2_MU_TPM2_HANDLE_Marshal(parent, buf, sizeof buf, &off) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, buf, sizeof buf, &off) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PRIVATE_Marshal(&priv, buf, sizeof buf, &off) != TSS2_RC_SUCCESS)
        return {};
    out.insert(out.end(), buf, buf + off);
    return out;
}

Status decode(std::span<const uint8_t> blob, TPM2_HANDLE& parent, TPM2B_PUBLIC& pub, TPM2B_PRIVATE& priv) {
    const Status bad{ErrorCode::invalid_argument, "the sealed PIN is not a keyward sealed blob (damaged?)"};
    if (blob.size() < kMagic.size() || std::memcmp(blob.data(), kMagic.data(), kMagic.size()) != 0) return bad;
    const uint8_t* p = blob.data() + kMagic.size();
    const size_t n = blob.size() - kMagic.size();
    size_t off = 0;
    if (Tss2_MU_TPM2_HANDLE_Unmarshal(p, n, &off, &parent) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PUBLIC_Unmarshal(p, n, &off, &pub) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PRIVATE_Unmarshal(p, n, &off, &priv) != TSS2_RC_SUCCESS || off != n)
        return bad;
    if (pub.publicArea.type != TPM2_ALG_KEYEDHASH) return bad;
    return {};
}

}  // namespace

Result<std::vector<uint8_t>> seal_secret(const std::string& tcti, std::span<const uint8_t> secret) {
    if (secret.empty() || secret.size() > kMaxSecret)
        return Status{ErrorCode::invalid_argument, "a sealed secret holds 1 to 128 bytes"};
    TpmSession tpm(tcti);
    std::vector<uint8_t> blob;
    Status problem;
    Status s = tpm.run(
        "sealing the embedded token's PIN to the TPM",
        [&](ESYS_CONTEXT* ctx, const char*& call) -> TSS2_RC {
            SaltedParent parent;
            TSS2_RC rc = parent.open(tpm, ctx, call);
            if (rc != TSS2_RC_SUCCESS) return rc;
            if ((rc = parent.start_session(ctx, TPMA_SESSION_DECRYPT, call)) != TSS2_RC_SUCCESS) return rc;
            TPM2B_SENSITIVE_CREATE sensitive{};
            sensitive.sensitive.data.size = static_cast<UINT16>(secret.size());
            std::memcpy(sensitive.sensitive.data.buffer, secret.data(), secret.size());
            TPM2B_PUBLIC pub{};
            TPM2B_PRIVATE priv{};
            rc = parent.create(ctx, sensitive, sealed_data_template(), pub, priv, call);
            if (rc != TSS2_RC_SUCCESS) return rc;
            blob = encode(parent.handle(), pub, priv);
            if (blob.empty()) problem = Status{ErrorCode::internal, "cannot encode the sealed PIN"};
            return TSS2_RC_SUCCESS;
        },
        problem);
    if (!s.ok()) return s;
    if (!problem.ok()) return problem;
    return blob;
}

Status unseal_secret(const std::string& tcti, std::span<const uint8_t> blob, std::vector<uint8_t>& out) {
    out.clear();
    TPM2_HANDLE recorded_parent = 0;
    TPM2B_PUBLIC pub{};
    TPM2B_PRIVATE priv{};
    if (auto s = decode(blob, recorded_parent, pub, priv); !s.ok()) return s;
    TpmSession tpm(tcti);
    Status problem;
    Status s = tpm.run(
        "unsealing the embedded token's PIN",
        [&](ESYS_CONTEXT* ctx, const char*& call) -> TSS2_RC {
            SaltedParent parent;
            TSS2_RC rc = parent.open(tpm, ctx, call);
            if (rc != TSS2_RC_SUCCESS) return rc;
            if (parent.handle() != recorded_parent) {
                problem = Status{ErrorCode::device_error,
                                 "the sealed PIN was made under another storage parent of the TPM (the SRK was "
                                 "added or removed since), or by another TPM"};
                return TSS2_RC_SUCCESS;
            }
            ESYS_TR object = ESYS_TR_NONE;
            call = "Esys_Load";
            rc = Esys_Load(ctx, parent.tr(), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub, &object);
            if (rc != TSS2_RC_SUCCESS) {
                if (classify(rc) != RcKind::other) return rc;
                problem = Status{ErrorCode::device_error, "this TPM cannot load the sealed PIN (" + std::string(call) +
                                                              ": " + rc_text(rc) + "): it was made by another TPM"};
                return TSS2_RC_SUCCESS;
            }
            Loaded sealed(ctx, object);
            if ((rc = parent.start_session(ctx, TPMA_SESSION_ENCRYPT, call)) != TSS2_RC_SUCCESS) return rc;
            TPM2B_SENSITIVE_DATA* data = nullptr;
            call = "Esys_Unseal";
            rc = Esys_Unseal(ctx, sealed.get(), parent.session(), ESYS_TR_NONE, ESYS_TR_NONE, &data);
            if (rc != TSS2_RC_SUCCESS) return rc;
            out.assign(data->buffer, data->buffer + data->size);
            OPENSSL_cleanse(data, sizeof *data);
            Esys_Free(data);
            return TSS2_RC_SUCCESS;
        },
        problem);
    if (!s.ok()) return s;
    return problem;
}

}  // namespace keyward::tpm
