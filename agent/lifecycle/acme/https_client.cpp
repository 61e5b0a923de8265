#include "agent/lifecycle/acme/https_client.hpp"

#include <curl/curl.h>

#include <cstdlib>
#include <mutex>

namespace keyward::acme {

namespace {

using SList = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

// curl_global_init is not thread-safe in every libcurl a Debian release may carry: once,
// before the first handle, from whichever thread gets here first.
void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

void easy_cleanup(void* handle) { curl_easy_cleanup(static_cast<CURL*>(handle)); }

// The proxy the environment names for https URLs (libcurl's order), for messages only.
std::string environment_proxy() {
    for (const char* name : {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"})
        if (const char* value = std::getenv(name); value != nullptr && *value != '\0')
            return std::string(value) + " (from " + name + ")";
    return {};
}

}  // namespace

// What the callbacks of one request fill in.
struct HttpsClient::Transfer {
    const HttpsOptions& options;
    HttpResponse response;
    size_t header_bytes = 0;
    bool header_too_large = false;
    bool body_too_large = false;

    static size_t on_header(char* data, size_t size, size_t count, void* self) {
        auto* t = static_cast<Transfer*>(self);
        std::string_view line(data, size * count);
        t->header_bytes += line.size();
        const bool blank = line == "\r\n" || line == "\n";
        if (t->header_bytes > t->options.limits.max_header_bytes || (!blank && t->response.headers.size() >= 200)) {
            t->header_too_large = true;
            return 0;
        }
        // A status line starts a response: forget an interim (1xx) one's headers.
        if (line.rfind("HTTP/", 0) == 0) t->response.headers.clear();
        else if (!blank) t->response.add_header_line(line);
        return line.size();
    }

    static size_t on_body(char* data, size_t size, size_t count, void* self) {
        auto* t = static_cast<Transfer*>(self);
        if (t->response.body.size() + size * count > t->options.limits.max_body_bytes) {
            t->body_too_large = true;
            return 0;
        }
        t->response.body.append(data, size * count);
        return size * count;
    }

    static int on_progress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
        return lifecycle::is_cancelled(static_cast<Transfer*>(self)->options.cancel) ? 1 : 0;
    }
};

HttpsClient::HttpsClient(HttpsOptions options) : options_(std::move(options)), curl_(nullptr, easy_cleanup) {
    global_init();
    curl_.reset(curl_easy_init());
}

HttpsClient::~HttpsClient() = default;

Result<HttpResponse> HttpsClient::request(const HttpRequest& request, std::chrono::milliseconds timeout) {
    Result<Url> parsed = parse_url(request.url);
    if (!parsed.ok()) return parsed.status();
    const std::string where = parsed->authority();
    CURL* curl = static_cast<CURL*>(curl_.get());
    if (curl == nullptr) return Status{ErrorCode::internal, "cannot create a libcurl handle"};

    SList headers(nullptr, curl_slist_free_all);
    auto add_header = [&](const std::string& line) {
        // Appending returns the list's head, which is new only for the first line.
        curl_slist* head = curl_slist_append(headers.get(), line.c_str());
        if (head == nullptr) return false;
        if (!headers) headers.reset(head);
        return true;
    };
    bool headers_ok = add_header("Expect:");  // no 100-continue round trip for a JWS body
    for (const auto& [k, v] : request.headers) headers_ok = headers_ok && add_header(k + ": " + v);
    if (!headers_ok) return Status{ErrorCode::internal, "out of memory"};

    Transfer transfer{options_, {}};
    char error[CURL_ERROR_SIZE] = {};
    const long ms = std::max<long>(1, static_cast<long>(timeout.count()));
    // The handle keeps its connection between requests. Its options point into this frame
    // (error buffer, header list, callbacks' data): cleared on the way out, so that nothing
    // dangles and nothing of this request leaks into the next.
    struct ResetOnExit {
        CURL* handle;
        ~ResetOnExit() { curl_easy_reset(handle); }
    } reset_on_exit{curl};
    bool set = curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str()) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, ms) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, ms) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_USERAGENT, options_.user_agent.c_str()) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get()) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &Transfer::on_header) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Transfer::on_body) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &Transfer::on_progress) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &transfer) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE,
                                static_cast<curl_off_t>(options_.limits.max_body_bytes)) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L) == CURLE_OK;
    if (!options_.ca_file.empty())
        set = set && curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str()) == CURLE_OK;
    if (options_.proxy) {
        set = set && curl_easy_setopt(curl, CURLOPT_PROXY, options_.proxy->c_str()) == CURLE_OK &&
              curl_easy_setopt(curl, CURLOPT_NOPROXY, options_.no_proxy.value_or("").c_str()) == CURLE_OK;
    } else if (options_.no_proxy) {
        set = set && curl_easy_setopt(curl, CURLOPT_NOPROXY, options_.no_proxy->c_str()) == CURLE_OK;
    }
    if (request.method == "GET") {
        set = set && curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    } else {
        set = set &&
              curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size())) ==
                  CURLE_OK &&
              curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.c_str()) == CURLE_OK;
        if (request.method != "POST")
            set = set && curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str()) == CURLE_OK;
    }
    if (!set) return Status{ErrorCode::internal, "cannot configure libcurl for " + where};

    const CURLcode rc = curl_easy_perform(curl);
    long opened = 0;
    if (curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &opened) == CURLE_OK) connections_ += opened;
    if (rc == CURLE_OK) {
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        transfer.response.status = static_cast<int>(status);
        return std::move(transfer.response);
    }

    const std::string detail = error[0] != '\0' ? error : curl_easy_strerror(rc);
    std::string via;
    if (options_.proxy) via = " through the proxy " + *options_.proxy;
    else if (std::string env = environment_proxy(); !env.empty())
        via = " (the environment names the proxy " + env + ")";
    long connect_code = 0;
    curl_easy_getinfo(curl, CURLINFO_HTTP_CONNECTCODE, &connect_code);
    if (connect_code == 407)
        return Status{ErrorCode::invalid_argument, "the proxy" + via + " wants credentials (HTTP 407) for " + where};
    if (connect_code >= 300)
        return Status{ErrorCode::connection_lost, "the proxy" + via + " refused the tunnel to " + where + " (HTTP " +
                                                      std::to_string(connect_code) + ")"};
    switch (rc) {
        case CURLE_ABORTED_BY_CALLBACK: return Status{ErrorCode::connection_lost, "interrupted: the agent is stopping"};
        case CURLE_OPERATION_TIMEDOUT:
            return Status{ErrorCode::timeout, "request to " + where + via + " timed out (" + detail + ")"};
        case CURLE_COULDNT_RESOLVE_PROXY:
            return Status{ErrorCode::connection_lost, "cannot resolve the proxy" + via + ": " + detail};
        case CURLE_COULDNT_RESOLVE_HOST:
            return Status{ErrorCode::connection_lost, "cannot resolve " + parsed->host + via + ": " + detail};
        case CURLE_COULDNT_CONNECT:
            return Status{ErrorCode::connection_lost, "cannot connect to " + where + via + ": " + detail};
        case CURLE_PEER_FAILED_VERIFICATION:
            return Status{ErrorCode::invalid_argument,
                          "the server " + where + " is not trusted (" + detail + "); check ca_file"};
        case CURLE_SSL_CACERT_BADFILE:
            return Status{ErrorCode::invalid_argument,
                          (options_.ca_file.empty() ? "cannot load the system trust store"
                                                    : "ca_file " + options_.ca_file + ": cannot load") +
                              " (" + detail + ")"};
        case CURLE_SSL_CONNECT_ERROR:
            return Status{ErrorCode::connection_lost, "TLS handshake with " + where + via + " failed: " + detail};
        case CURLE_PARTIAL_FILE:
            return Status{ErrorCode::protocol_error, "truncated response from " + where + " (" + detail + ")"};
        case CURLE_GOT_NOTHING:
            return Status{ErrorCode::connection_lost, "empty response from " + where + " (connection closed)"};
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_BAD_CONTENT_ENCODING:
            return Status{ErrorCode::protocol_error,
                          "the answer from " + where + " is not an HTTP response (" + detail + ")"};
        case CURLE_FILESIZE_EXCEEDED:
            return Status{ErrorCode::protocol_error, "response from " + where + " is too large (body larger than " +
                                                         std::to_string(options_.limits.max_body_bytes) + " bytes)"};
        case CURLE_WRITE_ERROR:
            if (transfer.header_too_large)
                return Status{ErrorCode::protocol_error,
                              "response from " + where + " is too large (header larger than " +
                                  std::to_string(options_.limits.max_header_bytes) + " bytes or more than 200 lines)"};
            if (transfer.body_too_large)
                return Status{ErrorCode::protocol_error, "response from " + where + " is too large (body larger than " +
                                                             std::to_string(options_.limits.max_body_bytes) +
                                                             " bytes)"};
            break;
        case CURLE_OUT_OF_MEMORY: return Status{ErrorCode::internal, "out of memory talking to " + where};
        default: break;
    }
    return Status{ErrorCode::connection_lost, "request to " + where + via + " failed: " + detail};
}

}  // namespace keyward::acme
