#include "agent/lifecycle/notify.hpp"

#include <algorithm>

#include "agent/lifecycle/subprocess.hpp"
#include "core/durable_file.hpp"
#include "core/log.hpp"

namespace keyward::lifecycle {
namespace {

constexpr int64_t kNotifyTimeout = 30;

std::string text_of(const nlohmann::ordered_json& v, const char* key) {
    auto it = v.find(key);
    return it != v.end() && it->is_string() ? it->get<std::string>() : std::string();
}

NotifyState load(const std::string& path) {
    NotifyState st;
    auto text = files::read_file(path);
    if (!text.ok()) return st;
    auto doc = nlohmann::json::parse(text.value(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        log::warning(path + ": not valid JSON; starting over (notifications may repeat once)");
        return st;
    }
    if (doc.contains("serial") && doc["serial"].is_string()) st.serial = doc["serial"].get<std::string>();
    if (doc.contains("status") && doc["status"].is_string()) st.status = doc["status"].get<std::string>();
    if (doc.contains("thresholds") && doc["thresholds"].is_array())
        for (const auto& t : doc["thresholds"])
            if (t.is_number_integer()) st.thresholds.push_back(t.get<int64_t>());
    return st;
}

}  // namespace

std::vector<Notification> due_notifications(const IdentityConfig& cfg, const nlohmann::ordered_json& view,
                                            NotifyState& state, int64_t now) {
    std::vector<Notification> out;
    const std::string status = text_of(view, "status");
    const bool notified_status = std::any_of(std::begin(kNotifiedStatuses), std::end(kNotifiedStatuses),
                                             [&](const char* s) { return status == s; });
    if (!notified_status) state.status.clear();  // left it: its next entry is announced again
    else if (state.status != status) {
        out.push_back({status, 0});
        state.status = status;
    }

    const std::string serial = text_of(view, "serial");
    if (serial != state.serial) {  // a new certificate: every threshold is ahead again
        state.serial = serial;
        state.thresholds.clear();
    }
    auto it = view.find("not_after_unix");
    if (serial.empty() || it == view.end() || !it->is_number_integer()) return out;
    const int64_t left = it->get<int64_t>() - now;
    std::vector<int64_t> thresholds = cfg.notify_before;
    std::sort(thresholds.begin(), thresholds.end());
    bool announced = false;
    for (int64_t t : thresholds) {  // smallest first
        if (left > t || std::find(state.thresholds.begin(), state.thresholds.end(), t) != state.thresholds.end())
            continue;
        state.thresholds.push_back(t);
        // Expired is announced as its status; a larger threshold crossed at the same time is
        // covered by the smaller one.
        if (left > 0 && !announced) out.push_back({"expiring", t});
        announced = true;
    }
    return out;
}

void notify_changes(const IdentityConfig& cfg, const std::string& dir, const nlohmann::ordered_json& view,
                    int64_t now) {
    if (cfg.notify.empty()) return;
    try {
        const std::string path = dir + "/notify.json";
        NotifyState state = load(path);
        const NotifyState before = state;
        auto due = due_notifications(cfg, view, state, now);
        if (state.serial != before.serial || state.status != before.status || state.thresholds != before.thresholds) {
            nlohmann::ordered_json doc{
                {"serial", state.serial}, {"status", state.status}, {"thresholds", state.thresholds}};
            if (Status s = files::write_atomic(path, doc.dump() + "\n", 0600); !s.ok()) {
                // Announcing without remembering would repeat it every check.
                log::error("identity " + cfg.name + ": cannot record notifications (" + s.message +
                           "); none sent until it can");
                return;
            }
        }
        auto na = view.find("not_after_unix");
        const std::string not_after =
            na != view.end() && na->is_number_integer() ? std::to_string(na->get<int64_t>()) : "";
        std::string message;
        if (auto la = view.find("last_attempt"); la != view.end() && la->is_object()) message = text_of(*la, "message");
        for (const auto& n : due) {
            std::vector<std::string> env = {
                "KEYWARD_IDENTITY=" + cfg.name,
                "KEYWARD_EVENT=" + n.event,
                "KEYWARD_STATUS=" + text_of(view, "status"),
                "KEYWARD_NOT_AFTER=" + not_after,
                "KEYWARD_TIME_LEFT=" +
                    (not_after.empty() ? std::string() : std::to_string(std::stoll(not_after) - now)),
                "KEYWARD_THRESHOLD=" + (n.event == "expiring" ? std::to_string(n.threshold) : std::string()),
                "KEYWARD_MESSAGE=" + message.substr(0, 1000),
            };
            if (auto f = view.find("files"); f != view.end() && f->is_object())
                env.push_back("KEYWARD_CERT=" + text_of(*f, "cert"));
            log::notice("identity " + cfg.name + ": notifying " + n.event +
                        (n.event == "expiring" ? " (less than " + std::to_string(n.threshold) + " s left)" : ""));
            for (const auto& argv : cfg.notify) {
                CommandOutcome o = run_command(argv, env, kNotifyTimeout, 64 * 1024);
                if (!(o.started && !o.timed_out && o.signal == 0 && o.exit_code == 0))
                    log::warning("identity " + cfg.name + ": notify program " + argv.front() + ": " +
                                 describe_outcome(o, kNotifyTimeout));
            }
        }
    } catch (const std::exception& e) {
        log::error("identity " + cfg.name + ": notification failed: " + e.what());
    }
}

}  // namespace keyward::lifecycle
