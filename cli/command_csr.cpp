// keyward csr NAME --subject /CN=x [--san KIND:VALUE]... [--out FILE]
#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "pki/csr.hpp"
#include "cli/exit_codes.hpp"
#include "cli/io.hpp"

namespace po = boost::program_options;

namespace keyward::cli {

int run_csr(Context& ctx) {
    static const CommandSyntax syntax{
        "csr NAME --subject /TYPE=value/... [--san KIND:VALUE]... [--out FILE]",
        "Writes a PKCS#10 certificate request (PEM) signed by the key on its device. The request asks for the "
        "clientAuth extended key usage and the given subject alternative names. In the subject a backslash "
        "takes the next character literally (\"\\/\"). SAN kinds: dns:NAME, ip:ADDRESS (IPv4 or IPv6), "
        "email:ADDRESS, uri:URI. EC keys sign with their curve's ECDSA scheme, RSA keys with rsa_pkcs1_sha256.",
        {"key NAME"}};
    po::options_description options("Options");
    options.add_options()("subject", po::value<std::string>()->value_name("SUBJECT"),
                          "subject, e.g. /CN=client/O=Example")(
        "san", po::value<std::vector<std::string>>()->value_name("KIND:VALUE"),
        "subject alternative name (repeatable): dns:, ip:, email:, uri:")(
        "out", po::value<std::string>()->value_name("FILE"), "write the request to FILE instead of stdout");
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, options, vm)) return *done;
    const std::string name = positional_arg(vm, 0);

    const std::string subject_text = string_option(vm, "subject");
    if (subject_text.empty()) return ctx.usage_error("missing --subject (e.g. --subject /CN=" + name + ")");
    pki::CsrRequest request;
    auto subject = pki::parse_subject(subject_text);
    if (!subject.ok()) return ctx.usage_error(subject.status().message);
    request.subject = std::move(subject.value());
    if (vm.count("san")) {
        for (const auto& text : vm["san"].as<std::vector<std::string>>()) {
            auto san = pki::parse_san(text);
            if (!san.ok()) return ctx.usage_error(san.status().message);
            request.sans.push_back(std::move(san.value()));
        }
    }

    const std::string action = "csr " + name;
    auto key = ctx.client().get_key(name);
    if (!key.ok()) return ctx.fail(key.status(), action);
    request.key_schemes = key->schemes;
    auto& client = ctx.client();
    const pki::SignFn sign = [&](Scheme scheme, std::span<const uint8_t> digest) {
        return client.sign(name, scheme, digest);
    };
    auto pem = pki::build_csr(request, key->spki, sign);
    if (!pem.ok()) return ctx.fail(pem.status(), action);
    if (auto s = write_output(string_option(vm, "out"), pem.value()); !s.ok()) return ctx.error(s.message);
    return exit_ok;
}

}  // namespace keyward::cli
