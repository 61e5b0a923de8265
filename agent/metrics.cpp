#include "agent/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace keyward::agent::metrics {
namespace {

constexpr auto relaxed = std::memory_order_relaxed;

// The shortest text that reads back as the same double, in %g style (0.0001, not 1e-04).
std::string number(double v) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
    return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

std::string number(uint64_t v) { return std::to_string(v); }
std::string number(int64_t v) { return std::to_string(v); }

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

struct Label {
    std::string_view name;
    std::string_view value;
};

void sample(std::string& out, std::string_view name, std::initializer_list<Label> labels, const std::string& value) {
    out.append(name);
    if (labels.size() > 0) {
        out.push_back('{');
        bool first = true;
        for (const auto& l : labels) {
            if (!first) out.push_back(',');
            first = false;
            out.append(l.name).append("=\"").append(escape_label(l.value)).append("\"");
        }
        out.push_back('}');
    }
    out.append(" ").append(value).append("\n");
}

std::optional<int64_t> unix_field(const nlohmann::json& v, const char* key) {
    auto it = v.find(key);
    if (it == v.end() || !it->is_number_integer()) return std::nullopt;
    return it->get<int64_t>();
}

}  // namespace

uint64_t key_hash(std::string_view name) noexcept {
    uint64_t h = 14695981039346656037ull;
    for (unsigned char ch : name) {
        h ^= ch;
        h *= 1099511628211ull;
    }
    return h == 0 ? 1 : h;
}

SigningCounters::KeySlot& SigningCounters::key_slot(uint64_t hash) noexcept {
    size_t i = hash % kKeySlots;
    for (size_t probes = 0; probes < kKeySlots; ++probes, i = (i + 1) % kKeySlots) {
        uint64_t seen = keys_[i].hash.load(std::memory_order_acquire);
        if (seen == hash) return keys_[i];
        if (seen == 0) {
            uint64_t expected = 0;
            if (keys_[i].hash.compare_exchange_strong(expected, hash, std::memory_order_acq_rel)) return keys_[i];
            if (expected == hash) return keys_[i];  // another thread claimed it for the same key
        }
    }
    return other_key_;
}

void SigningCounters::signature(std::string_view key, std::chrono::steady_clock::duration elapsed, bool ok) noexcept {
    KeySlot& slot = key_slot(key_hash(key));
    if (!ok) {
        slot.failed.fetch_add(1, relaxed);
        return;
    }
    const auto micros = static_cast<uint64_t>(
        std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count()));
    size_t b = 0;
    while (b < kLatencyBoundsMicros.size() && micros > kLatencyBoundsMicros[b]) ++b;
    slot.buckets[b].fetch_add(1, relaxed);
    slot.sum_micros.fetch_add(micros, relaxed);
}

void SigningCounters::denial(uid_t uid) noexcept {
    const uint64_t tag = uint64_t(uid) + 1;
    size_t i = uid % kUidSlots;
    for (size_t probes = 0; probes < kUidSlots; ++probes, i = (i + 1) % kUidSlots) {
        uint64_t seen = uids_[i].uid_plus_one.load(std::memory_order_acquire);
        if (seen == 0) {
            uint64_t expected = 0;
            if (uids_[i].uid_plus_one.compare_exchange_strong(expected, tag, std::memory_order_acq_rel)) seen = tag;
            else seen = expected;
        }
        if (seen == tag) {
            uids_[i].denials.fetch_add(1, relaxed);
            return;
        }
    }
    other_uid_denials_.fetch_add(1, relaxed);
}

std::vector<KeyCounts> SigningCounters::keys() const {
    std::vector<KeyCounts> out;
    auto read = [](const KeySlot& s, uint64_t hash) {
        KeyCounts c;
        c.hash = hash;
        c.failed = s.failed.load(relaxed);
        c.sum_micros = s.sum_micros.load(relaxed);
        for (size_t b = 0; b < c.buckets.size(); ++b) {
            c.buckets[b] = s.buckets[b].load(relaxed);
            c.ok += c.buckets[b];
        }
        return c;
    };
    for (const auto& s : keys_)
        if (uint64_t h = s.hash.load(std::memory_order_acquire); h != 0) out.push_back(read(s, h));
    KeyCounts other = read(other_key_, 0);
    if (other.ok + other.failed > 0) out.push_back(other);
    return out;
}

std::vector<UidCounts> SigningCounters::denials() const {
    std::vector<UidCounts> out;
    for (const auto& s : uids_)
        if (uint64_t tag = s.uid_plus_one.load(std::memory_order_acquire); tag != 0)
            out.push_back({static_cast<uid_t>(tag - 1), s.denials.load(relaxed)});
    std::sort(out.begin(), out.end(), [](const UidCounts& a, const UidCounts& b) { return *a.uid < *b.uid; });
    if (uint64_t n = other_uid_denials_.load(relaxed); n > 0) out.push_back({std::nullopt, n});
    return out;
}

SigningCounters& signing_counters() noexcept {
    static SigningCounters counters;
    return counters;
}

void IdentityBoard::publish(const std::string& list_json) {
    auto doc = nlohmann::json::parse(list_json, nullptr, false);
    if (doc.is_discarded() || !doc.contains("identities") || !doc["identities"].is_array()) return;
    std::function<void()> notify;
    {
        std::lock_guard lock(mu_);
        std::vector<Tracked> next;
        bool changed = false;
        for (const auto& v : doc["identities"]) {
            if (!v.is_object() || !v.contains("name") || !v["name"].is_string()) continue;
            Tracked t;
            t.sample.name = v["name"].get<std::string>();
            if (v.contains("status") && v["status"].is_string()) t.sample.status = v["status"].get<std::string>();
            t.sample.not_before = unix_field(v, "not_before_unix");
            t.sample.not_after = unix_field(v, "not_after_unix");
            t.sample.last_success = unix_field(v, "last_success_unix");
            if (v.contains("failures") && v["failures"].is_number_integer()) t.consecutive = v["failures"].get<int>();
            for (const auto& old : identities_)
                if (old.sample.name == t.sample.name) {
                    t.sample.failures_total = old.sample.failures_total;
                    // Consecutive failures grew: that many new ones. They were reset (a success)
                    // and grew again between two looks: all of them are new.
                    if (t.consecutive > old.consecutive)
                        t.sample.failures_total += uint64_t(t.consecutive - old.consecutive);
                    else if (t.consecutive < old.consecutive && t.consecutive > 0)
                        t.sample.failures_total += uint64_t(t.consecutive);
                    changed |= old.sample.status != t.sample.status || old.sample.not_after != t.sample.not_after ||
                               old.sample.failures_total != t.sample.failures_total ||
                               old.sample.last_success != t.sample.last_success;
                }
            // First look (agent start): failures already counted in state.json are not
            // repeated as new ones, but the consecutive count stands for them.
            if (std::none_of(identities_.begin(), identities_.end(),
                             [&](const Tracked& o) { return o.sample.name == t.sample.name; })) {
                t.sample.failures_total = uint64_t(std::max(0, t.consecutive));
                changed = true;
            }
            next.push_back(std::move(t));
        }
        changed |= next.size() != identities_.size();
        identities_ = std::move(next);
        if (changed) notify = on_change_;
    }
    if (notify) notify();
}

void IdentityBoard::clear() {
    std::function<void()> notify;
    {
        std::lock_guard lock(mu_);
        if (!identities_.empty()) notify = on_change_;
        identities_.clear();
    }
    if (notify) notify();
}

std::vector<IdentitySample> IdentityBoard::samples() const {
    std::lock_guard lock(mu_);
    std::vector<IdentitySample> out;
    for (const auto& t : identities_) out.push_back(t.sample);
    return out;
}

void IdentityBoard::on_change(std::function<void()> callback) {
    std::lock_guard lock(mu_);
    on_change_ = std::move(callback);
}

IdentityBoard& identity_board() noexcept {
    static IdentityBoard board;
    return board;
}

std::string escape_label(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char ch : value) {
        if (ch == '\\') out += "\\\\";
        else if (ch == '"') out += "\\\"";
        else if (ch == '\n') out += "\\n";
        else out.push_back(ch);
    }
    return out;
}

std::string render(const Snapshot& snap, const SigningCounters& counters, std::vector<std::string>& names) {
    for (const auto& k : snap.key_names)
        if (std::find(names.begin(), names.end(), k) == names.end()) names.push_back(k);
    std::unordered_map<uint64_t, const std::string*> by_hash;
    for (const auto& n : names) by_hash.emplace(key_hash(n), &n);

    std::string out;
    out.reserve(4096);
    header(out, "keyward_build_info", "gauge", "The agent's version (always 1).");
    sample(out, "keyward_build_info", {{"version", snap.version}}, "1");
    header(out, "keyward_uptime_seconds", "gauge", "Seconds since the agent started.");
    sample(out, "keyward_uptime_seconds", {}, number(snap.uptime_seconds));
    header(out, "keyward_start_time_seconds", "gauge", "Unix time the agent started.");
    sample(out, "keyward_start_time_seconds", {}, number(snap.start_time_seconds));

    header(out, "keyward_token_state", "gauge",
           "1 for the token's current state (present, removed, needs_pin, error).");
    static constexpr std::string_view kTokenStates[] = {"present", "removed", "needs_pin", "error"};
    for (const auto& t : snap.tokens)
        for (auto state : kTokenStates)
            sample(out, "keyward_token_state", {{"token", t.name}, {"kind", t.kind}, {"state", state}},
                   state == t.state ? "1" : "0");

    // Keys: slots sorted by name for a stable output; unnamed slots (a key made and deleted
    // between two renders) go to "other" with the overflow.
    struct Row {
        std::string name;
        KeyCounts c;
    };
    std::vector<Row> rows;
    KeyCounts other;
    bool have_other = false;
    for (const auto& c : counters.keys()) {
        auto it = c.hash ? by_hash.find(c.hash) : by_hash.end();
        if (it != by_hash.end()) {
            rows.push_back({*it->second, c});
            continue;
        }
        have_other = true;
        other.ok += c.ok;
        other.failed += c.failed;
        other.sum_micros += c.sum_micros;
        for (size_t b = 0; b < other.buckets.size(); ++b) other.buckets[b] += c.buckets[b];
    }
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.name < b.name; });
    if (have_other) rows.push_back({"other", other});

    header(out, "keyward_signatures_total", "counter", "Signatures made with the key, by result (ok, error).");
    for (const auto& r : rows) {
        sample(out, "keyward_signatures_total", {{"key", r.name}, {"result", "ok"}}, number(r.c.ok));
        sample(out, "keyward_signatures_total", {{"key", r.name}, {"result", "error"}}, number(r.c.failed));
    }
    header(out, "keyward_signature_duration_seconds", "histogram",
           "Time the device took for each successful signature with the key.");
    for (const auto& r : rows) {
        uint64_t cumulative = 0;
        for (size_t b = 0; b < kLatencyBoundsMicros.size(); ++b) {
            cumulative += r.c.buckets[b];
            sample(out, "keyward_signature_duration_seconds_bucket",
                   {{"key", r.name}, {"le", number(double(kLatencyBoundsMicros[b]) / 1e6)}}, number(cumulative));
        }
        cumulative += r.c.buckets.back();
        sample(out, "keyward_signature_duration_seconds_bucket", {{"key", r.name}, {"le", "+Inf"}}, number(cumulative));
        sample(out, "keyward_signature_duration_seconds_sum", {{"key", r.name}}, number(double(r.c.sum_micros) / 1e6));
        sample(out, "keyward_signature_duration_seconds_count", {{"key", r.name}}, number(cumulative));
    }

    header(out, "keyward_denials_total", "counter",
           "Requests refused by the access policy, by uid (\"other\" past 32 uids).");
    for (const auto& d : counters.denials())
        sample(out, "keyward_denials_total", {{"uid", d.uid ? std::to_string(*d.uid) : std::string("other")}},
               number(d.denials));

    header(out, "keyward_certificate_not_before_seconds", "gauge",
           "Unix time the identity's certificate becomes valid.");
    for (const auto& i : snap.identities)
        if (i.not_before)
            sample(out, "keyward_certificate_not_before_seconds", {{"identity", i.name}}, number(*i.not_before));
    header(out, "keyward_certificate_not_after_seconds", "gauge", "Unix time the identity's certificate expires.");
    for (const auto& i : snap.identities)
        if (i.not_after)
            sample(out, "keyward_certificate_not_after_seconds", {{"identity", i.name}}, number(*i.not_after));
    header(out, "keyward_renewal_last_success_timestamp_seconds", "gauge",
           "Unix time the identity's certificate in force was issued and installed.");
    for (const auto& i : snap.identities)
        if (i.last_success)
            sample(out, "keyward_renewal_last_success_timestamp_seconds", {{"identity", i.name}},
                   number(*i.last_success));
    header(out, "keyward_renewal_failures_total", "counter", "Failed enrollment and renewal attempts of the identity.");
    for (const auto& i : snap.identities)
        sample(out, "keyward_renewal_failures_total", {{"identity", i.name}}, number(i.failures_total));
    header(out, "keyward_identity_status", "gauge", "1 for the identity's current status, 0 for the others.");
    for (const auto& i : snap.identities) {
        bool listed = false;
        for (auto s : kKnownStatuses) {
            listed |= s == i.status;
            sample(out, "keyward_identity_status", {{"identity", i.name}, {"status", s}}, s == i.status ? "1" : "0");
        }
        if (!listed && !i.status.empty())
            sample(out, "keyward_identity_status", {{"identity", i.name}, {"status", i.status}}, "1");
    }
    return out;
}

}  // namespace keyward::agent::metrics
