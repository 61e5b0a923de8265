// RAII over the tpm2-tss C objects: a TCTI plus its ESYS context, ESYS_TR handles that must
// be flushed, and buffers ESYS allocated.
#pragma once

#include <memory>
#include <string>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include "core/result.hpp"

namespace keyward::tpm {

struct EsysFree {
    void operator()(void* p) const noexcept { Esys_Free(p); }
};
template <typename T>
using EsysPtr = std::unique_ptr<T, EsysFree>;

// One connection to a TPM: the TCTI chosen by a config string and the ESYS context on it.
class Connection {
public:
    static Result<std::unique_ptr<Connection>> open(const std::string& tcti_config);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    ESYS_CONTEXT* esys() const noexcept { return esys_; }

private:
    Connection() = default;
    TSS2_TCTI_CONTEXT* tcti_ = nullptr;
    ESYS_CONTEXT* esys_ = nullptr;
};

// A transient object or session we loaded: flushed when it goes out of scope, unless
// released (kept loaded on purpose) or abandoned (the TPM forgot it already).
class Loaded {
public:
    Loaded() = default;
    Loaded(ESYS_CONTEXT* ctx, ESYS_TR handle) noexcept : ctx_(ctx), handle_(handle) {}
    // A persistent object: only the ESYS_TR is closed at the end, the TPM keeps the object.
    static Loaded persistent(ESYS_CONTEXT* ctx, ESYS_TR handle) noexcept {
        Loaded l(ctx, handle);
        l.close_only_ = true;
        return l;
    }
    ~Loaded() { flush(); }
    Loaded(Loaded&& o) noexcept : ctx_(o.ctx_), handle_(o.handle_), close_only_(o.close_only_) {
        o.handle_ = ESYS_TR_NONE;
    }
    Loaded& operator=(Loaded&& o) noexcept {
        if (this != &o) {
            flush();
            ctx_ = o.ctx_;
            handle_ = o.handle_;
            close_only_ = o.close_only_;
            o.handle_ = ESYS_TR_NONE;
        }
        return *this;
    }
    Loaded(const Loaded&) = delete;
    Loaded& operator=(const Loaded&) = delete;

    ESYS_TR get() const noexcept { return handle_; }
    explicit operator bool() const noexcept { return handle_ != ESYS_TR_NONE; }
    void flush() noexcept;
    // The TPM no longer has it (reset, someone flushed it): forget the ESYS_TR without a command.
    void abandon() noexcept;

private:
    ESYS_CONTEXT* ctx_ = nullptr;
    ESYS_TR handle_ = ESYS_TR_NONE;
    bool close_only_ = false;
};

}  // namespace keyward::tpm
