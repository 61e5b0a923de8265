// The server's answers to each request kind: decode, check who is asking, then answer at
// once or hand device work to the key's token executor (the event loop lives in server.cpp).
#include "agent/server.hpp"

#include <algorithm>
#include <unordered_map>
#include <chrono>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "agent/connection.hpp"
#include "agent/event_loop.hpp"
#include "agent/metrics.hpp"
#include "agent/lifecycle/store.hpp"
#include "core/ossl.hpp"
#include "core/log.hpp"
#include "ipc/codec.hpp"

namespace keyward::agent {

namespace {

// The certificate and chain (DER, leaf first) of the identity whose current generation is
// for `key`, read from its store; empty when no identity uses the key. The files are small
// and GET_KEY is rare (consumers ask once per key lookup), so reading them here keeps the
// answer current across renewals without a cache to invalidate.
// Per-key signature counts from the metrics' counters, for the keys the agent serves now.
std::vector<ipc::KeyUse> key_use_by_name(const std::vector<ipc::KeyInfo>& keys) {
    std::unordered_map<uint64_t, const std::string*> by_hash;
    for (const auto& k : keys) by_hash.emplace(metrics::key_hash(k.name), &k.name);
    std::vector<ipc::KeyUse> out;
    for (const auto& c : metrics::signing_counters().keys()) {
        auto it = c.hash ? by_hash.find(c.hash) : by_hash.end();
        if (it != by_hash.end() && (c.ok || c.failed)) out.push_back({*it->second, c.ok, c.failed});
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
}

std::vector<std::vector<uint8_t>> identity_certificates(const std::vector<std::string>& identity_dirs,
                                                        const std::string& key) {
    for (const auto& dir : identity_dirs) {
        auto generation = lifecycle::IdentityStore(dir).current();
        if (!generation || generation->meta.key != key) continue;
        std::vector<std::vector<uint8_t>> out;
        const std::string pem = generation->cert_pem + "\n" + generation->chain_pem;
        ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
        while (bio) {
            ossl::Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
            if (!cert) break;
            const int n = i2d_X509(cert.get(), nullptr);
            if (n <= 0) break;
            auto& der = out.emplace_back(static_cast<size_t>(n));
            unsigned char* p = der.data();
            i2d_X509(cert.get(), &p);
        }
        ERR_clear_error();  // the end of the PEM text is reported as an error
        return out;
    }
    return {};
}

}  // namespace

void Server::handle_frame(const std::shared_ptr<Connection>& c, uint8_t op_byte, uint32_t id,
                          std::span<const uint8_t> body) {
    auto op = ipc::op_from_byte(op_byte);
    if (!op) {
        reply_error(c, id, op_byte, {ErrorCode::unknown_operation, "unknown operation " + std::to_string(op_byte)});
        return;
    }
    const AccessPolicy& policy = *c->loop->state->policy;
    std::vector<uint8_t> out;
    switch (*op) {
        case ipc::Op::hello: {
            auto req = ipc::decode_hello_request(body);
            if (!req.ok()) return reply_error(c, id, op_byte, req.status());
            if (req->version < ipc::kProtocolVersion)
                return reply_error(c, id, op_byte,
                                   {ErrorCode::unsupported_version,
                                    "client speaks protocol " + std::to_string(req->version) + "; this agent needs " +
                                        std::to_string(ipc::kProtocolVersion)});
            ipc::HelloResponse resp{ipc::kProtocolVersion, "keywardd " KEYWARD_VERSION, ipc::kMaxFrameSize,
                                    kMaxInFlightPerConnection, c->caller.uid()};
            ipc::encode_response(out, id, resp);
            break;
        }
        case ipc::Op::status: {
            ipc::StatusResponse resp;
            resp.server = "keywardd " KEYWARD_VERSION;
            resp.uptime_seconds = static_cast<uint64_t>(
                std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count());
            // Totals are for those who manage the agent; anyone else sees only the keys they
            // may use, and no counter of other users' activity.
            if (policy.may_manage(c->caller)) {
                resp.signatures = signatures_.load();
                resp.key_count = static_cast<uint32_t>(registry_->key_count());
                resp.key_use = key_use_by_name(registry_->keys());
            } else {
                uint32_t mine = 0;
                for (const auto& k : registry_->keys()) mine += policy.may_sign(c->caller, k.name);
                resp.key_count = mine;
            }
            for (const auto& t : registry_->tokens())
                resp.tokens.push_back({t->name, std::string(t->backend->kind()),
                                       std::string(device_health_name(t->health.load())), t->backend->description()});
            ipc::encode_response(out, id, resp);
            break;
        }
        case ipc::Op::list_keys: {
            // Pages by name (the registry is ordered by name): each answer fills most of a
            // frame and names its last key when more follow; the next request names it back.
            std::string after;
            if (!body.empty()) {
                auto req = ipc::decode_key_name_request(body);
                if (!req.ok()) return reply_error(c, id, op_byte, req.status());
                after = std::move(req->name);
            }
            ipc::ListKeysResponse resp;
            size_t estimate = 64;
            for (auto& k : registry_->keys()) {
                if (!after.empty() && k.name <= after) continue;
                if (!policy.may_sign(c->caller, k.name)) continue;
                k.certificates.clear();  // GET_KEY carries them; pages stay small (docs/protocol.md)
                size_t size =
                    64 + k.name.size() + k.type.size() + k.token.size() + k.spki.size() + 6 * k.schemes.size();
                for (const auto& a : k.attributes) size += 8 + a.name.size() + a.value.size();
                if (!resp.keys.empty() && estimate + size > ipc::kMaxFrameSize - 1024) {
                    resp.next = resp.keys.back().name;
                    break;
                }
                estimate += size;
                resp.keys.push_back(std::move(k));
            }
            if (!ipc::encode_response(out, id, resp))
                return reply_error(c, id, op_byte, {ErrorCode::internal, "a key too large for one answer"});
            break;
        }
        case ipc::Op::get_key: {
            auto req = ipc::decode_key_name_request(body);
            if (!req.ok()) return reply_error(c, id, op_byte, req.status());
            if (!policy.may_sign(c->caller, req->name) && !policy.may_manage(c->caller))
                return deny(c, id, op_byte, req->name, "read");
            auto entry = registry_->find(req->name);
            if (!entry) return reply_error(c, id, op_byte, {ErrorCode::no_such_key, "no such key: " + req->name});
            ipc::KeyInfo info = entry->info;
            // An identity's certificate is the one in force; otherwise the one stored next to
            // the key on its device (a provisioned card), if any.
            if (auto from_identity = identity_certificates(c->loop->state->identity_dirs, info.name);
                !from_identity.empty())
                info.certificates = std::move(from_identity);
            if (!ipc::encode_response(out, id, ipc::Op::get_key, info))
                return reply_error(c, id, op_byte, {ErrorCode::internal, "a key too large for one answer"});
            break;
        }
        case ipc::Op::sign: return handle_sign(c, id, body);
        case ipc::Op::generate_key: return handle_generate(c, id, body);
        case ipc::Op::delete_key: return handle_delete(c, id, body);
        case ipc::Op::import_key: return handle_import(c, id, body);
        case ipc::Op::list_identities:
        case ipc::Op::get_identity:
        case ipc::Op::renew:
        case ipc::Op::rollback:
        case ipc::Op::revoke: return handle_identity_op(c, *op, id, body);
        case ipc::Op::doctor: return handle_doctor(c, id);
    }
    send(c, std::move(out));
}

void Server::handle_sign(const std::shared_ptr<Connection>& c, uint32_t id, std::span<const uint8_t> body) {
    const auto op = static_cast<uint8_t>(ipc::Op::sign);
    auto req = ipc::decode_sign_request(body);
    if (!req.ok()) return reply_error(c, id, op, req.status());
    auto entry = registry_->find(req->key);
    // Deny before revealing whether the key exists to someone who may not use it.
    if (!c->loop->state->policy->may_sign(c->caller, req->key)) return deny(c, id, op, req->key, "sign with");
    if (!entry) return reply_error(c, id, op, {ErrorCode::no_such_key, "no such key: " + req->key});
    const SchemeInfo* scheme = scheme_info(req->scheme);
    bool supported = false;
    for (auto s : entry->info.schemes) supported |= s == req->scheme;
    if (!scheme || !supported)
        return reply_error(c, id, op,
                           {ErrorCode::unsupported_scheme,
                            "key " + req->key + " cannot sign with " +
                                (scheme ? std::string(scheme->name) : "scheme " + std::to_string(int(req->scheme)))});
    if (req->digest.size() != scheme->digest_size)
        return reply_error(c, id, op,
                           {ErrorCode::invalid_argument,
                            std::string(scheme->name) + " needs a " + std::to_string(scheme->digest_size) +
                                "-byte digest, got " + std::to_string(req->digest.size())});
    // Jobs hold the token by plain pointer: a token outlives its executor's jobs, and a
    // job must never hold the last reference (its executor would then join itself).
    Token* token = entry->token.get();
    // A key whose signatures take the device less than sign_here_limit_ is signed on its
    // event loop's thread when the device has a free share and no other request is
    // waiting: the hand-off to a worker (a wake-up and a sleep on each side) costs more
    // than such a signature's share of the loop. A loop serving this one connection alone
    // has nobody to keep waiting, so it also signs keys up to 10 times slower itself (RSA
    // on an HSM). Slower keys (TPMs, smartcards) always go to the workers, so that one
    // cannot stall a loop's other clients, or a caller that connects meanwhile.
    const uint64_t limit_us =
        static_cast<uint64_t>(sign_here_limit_.count()) * (c->loop->connections.size() == 1 ? 10 : 1);
    const bool may_run_here =
        c->loop->nothing_queued_behind && entry->sign_micros->load(std::memory_order_relaxed) <= limit_us;
    submit(
        c, id, op, *token,
        [this, c, id, token, average = entry->sign_micros, request = std::move(req).value()]() {
            const auto started = std::chrono::steady_clock::now();
            auto sig = token->backend->sign(request.key, request.scheme, request.digest);
            // Done with the device: the next signature may start (here or on a worker) while
            // this answer is encoded and written, which the client may answer with its next
            // request before this job has returned.
            Executor::release_device_share();
            metrics::signing_counters().signature(request.key, std::chrono::steady_clock::now() - started, sig.ok());
            audit_.signature(c->caller, request.key, sig.ok() ? "ok" : error_code_name(sig.status().code));
            std::vector<uint8_t> out;
            if (sig.ok()) {
                // Signatures only: a device that fails fast must not make its key look fast
                // (its next call may be a slow recovery, which must not run on the loop).
                note_sign_time(*average, std::chrono::steady_clock::now() - started);
                signatures_.fetch_add(1, std::memory_order_relaxed);
                ipc::encode_response(out, id, ipc::SignResponse{std::move(sig).value()});
                if (token->health.load() != DeviceHealth::present) token->health = DeviceHealth::present;
            } else {
                log::warning("sign with key " + log::client_text(request.key) + " failed: " + sig.status().message);
                if (sig.status().code == ErrorCode::device_unavailable) token->health = token->backend->health();
                ipc::encode_error(out, id, static_cast<uint8_t>(ipc::Op::sign), sig.status());
            }
            c->in_flight.fetch_sub(1);
            send(c, std::move(out));
        },
        may_run_here);
}

Token* Server::new_key_target(const std::shared_ptr<Connection>& c, uint32_t id, uint8_t op, const std::string& name,
                              const std::string& token_name, std::string_view action) {
    if (!c->loop->state->policy->may_manage(c->caller)) {
        deny(c, id, op, name, action, Right::manage);
        return nullptr;
    }
    auto token = registry_->target_for_new_key(name, token_name);
    if (!token.ok()) {
        reply_error(c, id, op, token.status());
        return nullptr;
    }
    return token.value().get();
}

void Server::answer_new_key(const std::shared_ptr<Connection>& c, uint32_t id, ipc::Op op, Token* token,
                            const std::string& name, Result<BackendKey> made) {
    std::vector<uint8_t> out;
    audit_.management(c->caller, ipc::op_name(op), name, made.ok() ? "ok" : error_code_name(made.status().code));
    if (made.ok()) {
        ipc::KeyInfo info = to_key_info(made.value(), token->name);
        auto owner = token->weak_from_this().lock();
        if (owner && !registry_->add(owner, info))
            log::warning("key " + log::client_text(name) + " appeared twice; keeping the first");
        ipc::encode_response(out, id, op, info);
    } else {
        log::warning(std::string(ipc::op_name(op)) + " " + log::client_text(name) +
                     " failed: " + made.status().message);
        ipc::encode_error(out, id, static_cast<uint8_t>(op), made.status());
    }
    c->in_flight.fetch_sub(1);
    send(c, std::move(out));
}

void Server::handle_generate(const std::shared_ptr<Connection>& c, uint32_t id, std::span<const uint8_t> body) {
    const auto op = static_cast<uint8_t>(ipc::Op::generate_key);
    auto req = ipc::decode_generate_key_request(body);
    if (!req.ok()) return reply_error(c, id, op, req.status());
    auto type = key_type_from_name(req->type);
    if (!type)
        return reply_error(c, id, op,
                           {ErrorCode::invalid_argument,
                            "unknown key type '" + req->type + "' (ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096)"});
    Token* token = new_key_target(c, id, op, req->name, req->token, "generate");
    if (!token) return;
    log::notice("generating " + log::client_text(req->type) + " key " + log::client_text(req->name) + " on token " +
                token->name + " for " + who(*c));
    submit(c, id, op, *token, [this, c, id, token, name = req->name, kt = *type]() {
        answer_new_key(c, id, ipc::Op::generate_key, token, name, token->backend->generate(name, kt));
    });
}

void Server::handle_import(const std::shared_ptr<Connection>& c, uint32_t id, std::span<const uint8_t> body) {
    const auto op = static_cast<uint8_t>(ipc::Op::import_key);
    auto req = ipc::decode_import_key_request(body);
    if (!req.ok()) return reply_error(c, id, op, req.status());
    Token* token = new_key_target(c, id, op, req->name, req->token, "import");
    if (!token) return;
    log::notice("importing key " + log::client_text(req->name) + " into token " + token->name + " for " + who(*c));
    submit(c, id, op, *token, [this, c, id, token, request = std::move(req).value()]() {
        answer_new_key(c, id, ipc::Op::import_key, token, request.name,
                       token->backend->import_key(request.name, request.blob));
    });
}

void Server::handle_identity_op(const std::shared_ptr<Connection>& c, ipc::Op op, uint32_t id,
                                std::span<const uint8_t> body) {
    const auto op_byte = static_cast<uint8_t>(op);
    std::string name;
    uint8_t flags = 0;
    std::string reason;
    if (op == ipc::Op::renew) {
        auto req = ipc::decode_renew_request(body);
        if (!req.ok()) return reply_error(c, id, op_byte, req.status());
        name = req->name;
        flags = req->flags;
    } else if (op == ipc::Op::revoke) {
        auto req = ipc::decode_revoke_request(body);
        if (!req.ok()) return reply_error(c, id, op_byte, req.status());
        name = req->name;
        flags = req->flags;
        reason = req->reason;
    } else if (op != ipc::Op::list_identities) {
        auto req = ipc::decode_key_name_request(body);
        if (!req.ok()) return reply_error(c, id, op_byte, req.status());
        name = req->name;
    }
    // Identity views name keys, subjects and files; changing them is management.
    const auto& lifecycle = c->loop->state->lifecycle;
    if (!c->loop->state->policy->may_manage(c->caller))
        return deny(c, id, op_byte, {}, std::string(ipc::op_name(op)) + " on", Right::manage);
    if (!lifecycle)
        return reply_error(c, id, op_byte,
                           {ErrorCode::invalid_argument, "no identities are configured (see docs/renewal.md)"});
    if (c->in_flight.load() >= kMaxInFlightPerConnection)
        return reply_error(c, id, op_byte, {ErrorCode::busy, "too many requests in flight on one connection"});
    c->in_flight.fetch_add(1);
    bool queued = lifecycle->submit([this, c, id, op, name, flags, reason](lifecycle::Lifecycle& l) {
        Result<std::string> view = Status{ErrorCode::internal, "unhandled"};
        try {
            switch (op) {
                case ipc::Op::list_identities: view = l.list_json(); break;
                case ipc::Op::get_identity: view = l.show_json(name); break;
                case ipc::Op::renew:
                    view = l.renew({name, (flags & ipc::kRenewNow) != 0, (flags & ipc::kRenewRekey) != 0,
                                    (flags & ipc::kRenewCompromised) != 0});
                    break;
                case ipc::Op::revoke: view = l.revoke({name, reason, (flags & ipc::kRevokeRetire) != 0}); break;
                default: view = l.rollback(name); break;
            }
        } catch (const std::exception& e) {
            view = Status{ErrorCode::internal, std::string(ipc::op_name(op)) + " failed: " + e.what()};
        }
        if (op == ipc::Op::renew || op == ipc::Op::rollback || op == ipc::Op::revoke)
            audit_.management(c->caller, ipc::op_name(op), name,
                              view.ok() ? "ok" : error_code_name(view.status().code));
        std::vector<uint8_t> out;
        if (!view.ok() || !ipc::encode_response(out, id, op, ipc::DocumentResponse{view.value()})) {
            out.clear();
            ipc::encode_error(out, id, static_cast<uint8_t>(op),
                              view.ok() ? Status{ErrorCode::internal, "identity view too large"} : view.status());
        }
        c->in_flight.fetch_sub(1);
        send(c, std::move(out));
    });
    if (!queued) {
        c->in_flight.fetch_sub(1);
        reply_error(c, id, op_byte, {ErrorCode::busy, "the certificate lifecycle is saturated; retry later"});
    }
}

void Server::handle_delete(const std::shared_ptr<Connection>& c, uint32_t id, std::span<const uint8_t> body) {
    const auto op = static_cast<uint8_t>(ipc::Op::delete_key);
    auto req = ipc::decode_key_name_request(body);
    if (!req.ok()) return reply_error(c, id, op, req.status());
    if (!c->loop->state->policy->may_manage(c->caller)) return deny(c, id, op, req->name, "delete", Right::manage);
    auto entry = registry_->find(req->name);
    if (!entry) return reply_error(c, id, op, {ErrorCode::no_such_key, "no such key: " + req->name});
    log::notice("deleting key " + log::client_text(req->name) + " on token " + entry->token->name + " for " + who(*c));
    Token* token = entry->token.get();
    submit(c, id, op, *token, [this, c, id, token, name = req->name]() {
        Status s = token->backend->destroy(name);
        audit_.management(c->caller, "delete_key", name, s.ok() ? "ok" : error_code_name(s.code));
        std::vector<uint8_t> out;
        if (s.ok()) {
            registry_->remove(name);
            ipc::encode_empty_response(out, id, ipc::Op::delete_key);
        } else {
            ipc::encode_error(out, id, static_cast<uint8_t>(ipc::Op::delete_key), s);
        }
        c->in_flight.fetch_sub(1);
        send(c, std::move(out));
    });
}

}  // namespace keyward::agent
