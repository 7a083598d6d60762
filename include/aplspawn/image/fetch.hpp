// Transfers over http, https and file URLs (libcurl): a HEAD-like probe, a small text file
// (SHA256SUMS) and a streamed, resumable download.
//
// Every request follows redirects (to http/https only), verifies TLS peers and host names,
// takes proxies from the environment (http_proxy, https_proxy, no_proxy) and extra trusted CAs
// too (CURL_CA_BUNDLE or SSL_CERT_FILE, SSL_CERT_DIR), gives up on a
// connection after connect_timeout and on a transfer slower than low_speed_bytes per second
// for low_speed_time, and retries transient failures (connection reset, timeout, a dropped
// body, HTTP 5xx/408/429) a bounded number of times with a doubling pause. Anything else (404,
// refused connection, unknown host, TLS failure) fails at once with one Error naming the URL and
// the reason.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

namespace aplspawn::image {

struct FetchOptions {
    std::chrono::milliseconds connect_timeout{20'000};
    long low_speed_bytes = 1024;                  // slower than this many bytes/s ...
    std::chrono::seconds low_speed_time{30};      // ... for this long: a (transient) timeout
    int attempts = 4;                             // per request, counting the first
    std::chrono::milliseconds retry_delay{1000};  // pause before the first retry, then doubled
    std::chrono::milliseconds max_retry_delay{8000};
    // Told before each retry: what failed, the number of the attempt that follows, the pause.
    std::function<void(const std::string& why, int next_attempt, std::chrono::milliseconds pause)>
        on_retry;
};

// What identifies one version of a remote file.
struct Validators {
    std::string etag;           // as the server sent it, quotes included
    std::string last_modified;  // HTTP date
    bool empty() const { return etag.empty() && last_modified.empty(); }
    bool operator==(const Validators&) const = default;
};

struct RemoteFile {
    std::string url;                    // after redirects
    long status = 0;                    // HTTP status; 0 for file://
    std::optional<std::uint64_t> size;  // the whole file's size, when the server says it
    Validators validators;
    bool not_modified = false;          // a conditional probe was answered 304 Not Modified
};

// Looks at a remote file without transferring it (HTTP HEAD; file://: stat). With if_changed,
// an HTTP probe is conditional (If-None-Match / If-Modified-Since) and may come back
// not_modified. Throws Error "URL: reason".
RemoteFile probe(const std::string& url, const Validators& if_changed, const FetchOptions& options);

// A small file such as SHA256SUMS; nullopt when it does not exist (HTTP 404/410, no such file).
// Throws Error for other failures and for files larger than max_bytes.
std::optional<std::string> fetch_text(const std::string& url, std::size_t max_bytes,
                                      const FetchOptions& options);

// Receives a download's body.
class BodySink {
public:
    virtual ~BodySink() = default;
    // A body begins at `offset` of the file. After asking for a later offset, offset 0 means the
    // server sent the whole file (it ignored Range, or the file changed): start over.
    // total: the whole file's size when known. May throw (e.g. not enough space): the download
    // stops and the Error propagates.
    virtual void begin(std::uint64_t offset, std::optional<std::uint64_t> total) = 0;
    // The next bytes. May throw (ENOSPC ...): the download stops and the Error propagates.
    virtual void write(std::span<const unsigned char> data) = 0;
};

struct DownloadOutcome {
    RemoteFile remote;
    std::uint64_t received = 0;  // body bytes received, all attempts together
    int attempts = 0;
    bool restarted = false;  // a range request was answered with the whole file
};

// GETs url into sink, from `offset` on (a Range request guarded by If-Range with `if_range`,
// when given). A transient failure is retried from where the body stopped.
DownloadOutcome download(const std::string& url, std::uint64_t offset, const Validators& if_range,
                         BodySink& sink, const FetchOptions& options);

// --- pure helpers, exposed for tests ---

// Whether an HTTP status is worth retrying (5xx, 408, 429).
bool transient_http_status(long status);
// "Not Found" for 404 etc.; "" when unknown.
std::string_view http_reason(long status);
// Parses "bytes START-END/TOTAL" (TOTAL may be "*"); nullopt when malformed.
struct ContentRange {
    std::uint64_t start = 0, end = 0;
    std::optional<std::uint64_t> total;
};
std::optional<ContentRange> parse_content_range(std::string_view value);
// An HTTP date (IMF-fixdate) for a Unix time: "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(std::int64_t unix_seconds);

}  // namespace aplspawn::image
