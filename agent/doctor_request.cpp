// The DOCTOR request (agent/doctor.hpp): admins only, one run at a time, on a thread of its
// own because the checks may wait seconds on a CA; the answer goes back like an executor's.
#include "agent/connection.hpp"
#include "agent/event_loop.hpp"
#include "agent/server.hpp"
#include "ipc/codec.hpp"

namespace keyward::agent {

void Server::handle_doctor(const std::shared_ptr<Connection>& c, uint32_t id) {
    const auto op = static_cast<uint8_t>(ipc::Op::doctor);
    // The checks name files, users and devices: they are for those who manage the agent.
    if (!c->loop->state->policy->may_manage(c->caller)) return deny(c, id, op, {}, "run doctor on", Right::manage);
    const auto& doctor_fn = c->loop->state->doctor;
    if (!doctor_fn) return reply_error(c, id, op, {ErrorCode::internal, "doctor is not available in this agent"});
    if (doctor_running_.exchange(true))
        return reply_error(c, id, op, {ErrorCode::busy, "a doctor run is in progress; retry in a few seconds"});
    if (doctor_thread_.joinable()) doctor_thread_.join();  // the previous run, finished
    c->in_flight.fetch_add(1);
    doctor_thread_ = std::thread([this, c, id, doctor = doctor_fn]() {
        std::vector<uint8_t> out;
        try {
            ipc::encode_response(out, id, ipc::Op::doctor, ipc::DocumentResponse{(*doctor)()});
        } catch (const std::exception& e) {
            out.clear();
            ipc::encode_error(out, id, static_cast<uint8_t>(ipc::Op::doctor),
                              {ErrorCode::internal, std::string("doctor failed: ") + e.what()});
        }
        c->in_flight.fetch_sub(1);
        send(c, std::move(out));
        doctor_running_ = false;
    });
}

}  // namespace keyward::agent
