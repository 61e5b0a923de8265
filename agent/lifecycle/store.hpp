// An identity's certificates on disk, one directory per generation:
//
//   DIR/gen-N/{cert.pem, chain.pem, fullchain.pem, key.ref, meta.json}
//   DIR/current  -> gen-N      the one switch that puts a generation in force
//   DIR/previous -> gen-M      kept for rollback
//
// A generation is written and fsync'd completely before `current` is replaced with one
// rename(2), so a crash leaves either the old or the new generation in force, never a mix.
// Programs read DIR/current/cert.pem etc.; those paths never change.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace keyward::lifecycle {

struct GenerationMeta {
    int number = 0;
    std::string key;         // device key the certificate is for
    std::string request_id;  // the renewal attempt that produced it
    int64_t created = 0;
    std::string reason;  // "enroll", "renew", "rekey"
};

struct Generation {
    GenerationMeta meta;
    std::string dir;
    std::string cert_pem;
    std::string chain_pem;
};

struct GenerationFiles {
    std::string cert, chain, fullchain, keyref;
};

class IdentityStore {
public:
    explicit IdentityStore(std::string dir) : dir_(std::move(dir)) {}

    const std::string& dir() const noexcept { return dir_; }
    // Stable paths through `current` (what hooks and applications use).
    GenerationFiles current_files() const;

    Status prepare() const;  // creates DIR
    std::optional<Generation> current() const;
    std::optional<Generation> previous() const;
    int next_number() const;  // one more than any gen-N present

    // Writes gen-N completely (files fsync'd, then the directory). Fails if it exists.
    Status write_generation(const GenerationMeta& meta, const std::string& cert_pem, const std::string& chain_pem,
                            const std::string& keyref_pem) const;
    // Makes `number` current and `previous_number` (0: none) previous: previous first, then
    // current, each one rename(2) + fsync of DIR.
    Status switch_to(int number, int previous_number) const;
    // Removes generation directories other than current and previous, and leftovers of
    // interrupted writes and switches.
    void prune() const;
    // Retirement: `current` goes first (nothing is in force from then on), then `previous`
    // and every generation directory.
    Status remove_all_generations() const;

private:
    std::optional<Generation> load_link(const char* link) const;
    std::string gen_dir(int number) const;

    std::string dir_;
};

}  // namespace keyward::lifecycle
