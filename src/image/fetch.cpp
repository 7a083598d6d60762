#include "aplspawn/image/fetch.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/image/url.hpp"
#include "aplspawn/text.hpp"

#include <curl/curl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

namespace aplspawn::image {
namespace {

constexpr long kBufferSize = 1L << 20;  // libcurl's receive buffer: few, large callbacks

void global_init() {
    static std::once_flag once;
    static CURLcode result = CURLE_OK;
    std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (result != CURLE_OK)
        throw Error(fmt::format("libcurl: initialisation failed: {}", curl_easy_strerror(result)));
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    return s;
}

const char* env_nonempty(const char* name) {
    const char* v = std::getenv(name);
    return v && *v ? v : nullptr;
}

// CURL_CA_BUNDLE, else SSL_CERT_FILE: a file of trusted CA certificates (PEM).
const char* ca_bundle_from_env() {
    if (const char* v = env_nonempty("CURL_CA_BUNDLE")) return v;
    return env_nonempty("SSL_CERT_FILE");
}

// The headers of the last response (those of redirects are forgotten).
struct Headers {
    std::string etag, last_modified, content_range;
    void reset() { *this = Headers{}; }
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
    auto* h = static_cast<Headers*>(user);
    std::string_view line(data, size * count);
    if (line.starts_with("HTTP/")) {
        h->reset();
        return size * count;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return size * count;
    std::string name = text::ascii_lower(trim(line.substr(0, colon)));
    std::string value(trim(line.substr(colon + 1)));
    if (name == "etag") h->etag = value;
    else if (name == "last-modified") h->last_modified = value;
    else if (name == "content-range") h->content_range = value;
    return size * count;
}

struct EasyCleanup {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistFree {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// One libcurl easy handle with aplspawn's settings. The handle and the header list are owned
// from the moment they exist: a setopt that throws in the constructor leaks neither.
class Easy {
public:
    Easy(const std::string& url, const FetchOptions& o) {
        global_init();
        h_.reset(curl_easy_init());
        if (!h_) throw Error("libcurl: cannot create a handle (out of memory?)");
        err_[0] = '\0';
        set(CURLOPT_URL, url.c_str());
        set(CURLOPT_PROTOCOLS_STR, "http,https,file");
        set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");  // a redirect never reaches a local file
        set(CURLOPT_FOLLOWLOCATION, 1L);
        set(CURLOPT_MAXREDIRS, 10L);
        set(CURLOPT_SSL_VERIFYPEER, 1L);
        set(CURLOPT_SSL_VERIFYHOST, 2L);
        set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.connect_timeout.count()));
        set(CURLOPT_LOW_SPEED_LIMIT, o.low_speed_bytes);
        set(CURLOPT_LOW_SPEED_TIME, static_cast<long>(o.low_speed_time.count()));
        set(CURLOPT_NOSIGNAL, 1L);
        set(CURLOPT_FAILONERROR, 1L);
        set(CURLOPT_ERRORBUFFER, err_);
        set(CURLOPT_USERAGENT, "aplspawn/" APLSPAWN_VERSION);
        set(CURLOPT_TCP_KEEPALIVE, 1L);
        set(CURLOPT_HEADERFUNCTION, on_header);
        set(CURLOPT_HEADERDATA, &headers_);
        // Proxies: libcurl reads http_proxy, https_proxy and no_proxy from the environment.
        // Trusted CAs: the system's, or those named as the curl tool and OpenSSL read them.
        if (const char* bundle = ca_bundle_from_env()) set(CURLOPT_CAINFO, bundle);
        if (const char* dir = env_nonempty("SSL_CERT_DIR")) set(CURLOPT_CAPATH, dir);
    }
    ~Easy() = default;
    Easy(const Easy&) = delete;
    Easy& operator=(const Easy&) = delete;

    template <class T>
    void set(CURLoption option, T value) {
        CURLcode c = curl_easy_setopt(h_.get(), option, value);
        if (c != CURLE_OK)
            throw Error(fmt::format("libcurl: option {}: {}", static_cast<int>(option),
                                    curl_easy_strerror(c)));
    }
    void header(const std::string& line) {
        curl_slist* l = curl_slist_append(list_.get(), line.c_str());
        if (!l) throw Error("libcurl: out of memory");
        (void)list_.release();  // appended in place: l is the same list, or a new first node
        list_.reset(l);
        set(CURLOPT_HTTPHEADER, list_.get());
    }
    CURLcode perform() {
        headers_.reset();
        err_[0] = '\0';
        return curl_easy_perform(h_.get());
    }
    long status() const {
        long s = 0;
        curl_easy_getinfo(h_.get(), CURLINFO_RESPONSE_CODE, &s);
        return s;
    }
    std::optional<std::uint64_t> content_length() const {
        curl_off_t n = -1;
        if (curl_easy_getinfo(h_.get(), CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &n) != CURLE_OK || n < 0)
            return std::nullopt;
        return static_cast<std::uint64_t>(n);
    }
    std::string effective_url() const {
        char* u = nullptr;
        curl_easy_getinfo(h_.get(), CURLINFO_EFFECTIVE_URL, &u);
        return u ? u : "";
    }
    const Headers& headers() const { return headers_; }
    Validators validators() const { return {headers_.etag, headers_.last_modified}; }

    // Why the request failed, in one line.
    std::string describe(CURLcode code) const {
        if (code == CURLE_HTTP_RETURNED_ERROR) {
            long s = status();
            auto reason = http_reason(s);
            return reason.empty() ? fmt::format("HTTP {}", s) : fmt::format("HTTP {} {}", s, reason);
        }
        std::string text = err_[0] ? std::string(err_) : std::string(curl_easy_strerror(code));
        long os_errno = 0;
        curl_easy_getinfo(h_.get(), CURLINFO_OS_ERRNO, &os_errno);
        if (os_errno != 0) {
            std::string os = std::strerror(static_cast<int>(os_errno));
            if (text.find(os) == std::string::npos) text = os + " (" + text + ")";
        }
        return text;
    }

    bool transient(CURLcode code) const {
        switch (code) {
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
        case CURLE_GOT_NOTHING:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM: return true;
        case CURLE_HTTP_RETURNED_ERROR: return transient_http_status(status());
        default: return false;
        }
    }

    CURL* get() const { return h_.get(); }

private:
    // Declared in this order: the handle goes before the header list it may still point to.
    std::unique_ptr<curl_slist, SlistFree> list_;
    std::unique_ptr<CURL, EasyCleanup> h_;
    Headers headers_;
    char err_[CURL_ERROR_SIZE];
};

// Runs attempt(n) until it returns true (done), retrying while it reports a transient failure.
// attempt returns the failure text and whether it is transient through `failure`.
struct Failure {
    std::string why;
    bool transient = false;
};

template <class F>
void with_retries(const std::string& url, const FetchOptions& o, F&& attempt) {
    std::chrono::milliseconds pause = o.retry_delay;
    int attempts = std::max(1, o.attempts);
    for (int n = 1;; ++n) {
        Failure f;
        if (attempt(n, f)) return;
        if (!f.transient || n >= attempts) {
            if (n > 1) f.why += fmt::format(" (gave up after {} attempts)", n);
            throw Error(fmt::format("{}: {}", url, f.why));
        }
        if (o.on_retry) o.on_retry(f.why, n + 1, pause);
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, o.max_retry_delay);
    }
}

RemoteFile probe_file(const std::string& url, const Validators& if_changed) {
    std::string path = file_url_path(url);
    struct stat st;
    if (::stat(path.c_str(), &st) < 0) throw Error::from_errno(url, errno);
    if (!S_ISREG(st.st_mode)) throw Error(fmt::format("{}: not a regular file", url));
    RemoteFile r;
    r.url = url;
    r.size = static_cast<std::uint64_t>(st.st_size);
    // A local file's version: inode, size and mtime to the nanosecond.
    r.validators.etag =
        fmt::format("\"{:x}-{:x}-{:x}.{:09}\"", static_cast<std::uint64_t>(st.st_ino),
                    static_cast<std::uint64_t>(st.st_size), static_cast<std::int64_t>(st.st_mtim.tv_sec),
                    static_cast<long>(st.st_mtim.tv_nsec));
    r.validators.last_modified = http_date(st.st_mtim.tv_sec);
    r.not_modified = !if_changed.etag.empty() && if_changed.etag == r.validators.etag;
    return r;
}

bool is_file_url(const std::string& url) { return url_scheme(url) == "file"; }

}  // namespace

bool transient_http_status(long status) {
    return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

std::string_view http_reason(long status) {
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 410: return "Gone";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
    }
}

std::optional<ContentRange> parse_content_range(std::string_view v) {
    v = trim(v);
    if (!v.starts_with("bytes ")) return std::nullopt;
    v.remove_prefix(6);
    auto dash = v.find('-'), slash = v.find('/');
    if (dash == std::string_view::npos || slash == std::string_view::npos || dash > slash)
        return std::nullopt;
    auto number = [](std::string_view s) -> std::optional<std::uint64_t> {
        std::uint64_t n = 0;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
        if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
        return n;
    };
    auto start = number(v.substr(0, dash));
    auto end = number(v.substr(dash + 1, slash - dash - 1));
    if (!start || !end || *end < *start) return std::nullopt;
    ContentRange r{*start, *end, std::nullopt};
    std::string_view total = v.substr(slash + 1);
    if (total != "*") {
        r.total = number(total);
        if (!r.total || *r.total <= *end) return std::nullopt;
    }
    return r;
}

std::string http_date(std::int64_t unix_seconds) {
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    return fmt::format("{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT", kDays[tm.tm_wday], tm.tm_mday,
                       kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

RemoteFile probe(const std::string& url, const Validators& if_changed, const FetchOptions& options) {
    if (is_file_url(url)) return probe_file(url, if_changed);
    RemoteFile r;
    with_retries(url, options, [&](int, Failure& f) {
        Easy e(url, options);
        e.set(CURLOPT_NOBODY, 1L);
        if (!if_changed.etag.empty()) e.header("If-None-Match: " + if_changed.etag);
        if (!if_changed.last_modified.empty())
            e.header("If-Modified-Since: " + if_changed.last_modified);
        CURLcode c = e.perform();
        long status = e.status();
        if (c == CURLE_HTTP_RETURNED_ERROR && (status == 405 || status == 501)) {
            // The server does not do HEAD: nothing known until the download itself.
            r = RemoteFile{};
            r.url = e.effective_url();
            r.status = status;
            return true;
        }
        if (c != CURLE_OK) {
            f = {e.describe(c), e.transient(c)};
            return false;
        }
        r.url = e.effective_url();
        r.status = status;
        r.not_modified = status == 304;
        r.size = r.not_modified ? std::nullopt : e.content_length();
        r.validators = e.validators();
        return true;
    });
    return r;
}

std::optional<std::string> fetch_text(const std::string& url, std::size_t max_bytes,
                                      const FetchOptions& options) {
    struct Body {
        std::string text;
        std::size_t max;
        bool too_big = false;
    };
    std::optional<std::string> result;
    with_retries(url, options, [&](int, Failure& f) {
        Easy e(url, options);
        Body body{{}, max_bytes};
        e.set(CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t n, void* user) -> size_t {
            auto* b = static_cast<Body*>(user);
            if (b->text.size() + size * n > b->max) {
                b->too_big = true;
                return 0;
            }
            b->text.append(data, size * n);
            return size * n;
        });
        e.set(CURLOPT_WRITEDATA, &body);
        e.set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_bytes));
        CURLcode c = e.perform();
        if (body.too_big || c == CURLE_FILESIZE_EXCEEDED)
            throw Error(fmt::format("{}: larger than {} bytes", url, max_bytes));
        long status = e.status();
        if ((c == CURLE_HTTP_RETURNED_ERROR && (status == 404 || status == 410)) ||
            c == CURLE_FILE_COULDNT_READ_FILE) {
            result.reset();
            return true;
        }
        if (c != CURLE_OK) {
            f = {e.describe(c), e.transient(c)};
            return false;
        }
        result = std::move(body.text);
        return true;
    });
    return result;
}

namespace {

// The state of one download across its attempts.
struct Transfer {
    const std::string* url = nullptr;
    BodySink* sink = nullptr;
    Easy* easy = nullptr;
    bool is_file = false;
    std::optional<std::uint64_t> file_size;  // file:// only
    std::uint64_t requested = 0;             // the offset this attempt asked for
    bool begun = false;                      // this attempt's body has begun
    std::uint64_t position = 0;              // the file offset of the next byte
    std::uint64_t received = 0;
    bool restarted = false;
    std::exception_ptr error;

    // Called at the first body byte (or after an empty body): where the body starts.
    void begin() {
        begun = true;
        std::uint64_t start = 0;
        std::optional<std::uint64_t> total;
        if (is_file) {
            start = requested;
            total = file_size;
        } else if (easy->status() == 206) {
            auto cr = parse_content_range(easy->headers().content_range);
            if (!cr || cr->start != requested)
                throw Error(fmt::format("{}: asked for bytes from {}, the server sent {}", *url,
                                        requested,
                                        easy->headers().content_range.empty()
                                            ? std::string("no Content-Range")
                                            : easy->headers().content_range));
            start = requested;
            total = cr->total;
        } else {
            start = 0;
            total = easy->content_length();
            if (requested > 0) restarted = true;
        }
        position = start;
        sink->begin(start, total);
    }

    static size_t on_body(char* data, size_t size, size_t count, void* user) {
        auto* t = static_cast<Transfer*>(user);
        size_t n = size * count;
        try {
            if (!t->begun) t->begin();
            t->sink->write({reinterpret_cast<const unsigned char*>(data), n});
            t->position += n;
            t->received += n;
            return n;
        } catch (...) {
            t->error = std::current_exception();
            return 0;  // != n: libcurl stops with CURLE_WRITE_ERROR
        }
    }
};

}  // namespace

DownloadOutcome download(const std::string& url, std::uint64_t offset, const Validators& if_range,
                         BodySink& sink, const FetchOptions& options) {
    DownloadOutcome out;
    Transfer t;
    t.url = &url;
    t.sink = &sink;
    t.is_file = is_file_url(url);
    RemoteFile local;  // file://: its validators are ours (inode, size, mtime), not libcurl's
    if (t.is_file) {
        local = probe_file(url, {});
        t.file_size = local.size;
    }
    std::uint64_t at = offset;
    Validators guard = if_range;
    with_retries(url, options, [&](int n, Failure& f) {
        out.attempts = n;
        if (t.is_file && t.file_size && at > *t.file_size) at = 0;
        Easy e(url, options);
        t.easy = &e;
        t.requested = at;
        t.begun = false;
        e.set(CURLOPT_BUFFERSIZE, kBufferSize);
        e.set(CURLOPT_WRITEFUNCTION, &Transfer::on_body);
        e.set(CURLOPT_WRITEDATA, &t);
        if (at > 0) {
            if (t.is_file) {
                e.set(CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(at));
            } else {
                std::string range = fmt::format("{}-", at);
                e.set(CURLOPT_RANGE, range.c_str());
                // If the file changed since, the server sends all of it (200) and we start over.
                if (!guard.etag.empty() && !guard.etag.starts_with("W/"))
                    e.header("If-Range: " + guard.etag);
                else if (!guard.last_modified.empty())
                    e.header("If-Range: " + guard.last_modified);
            }
        }
        CURLcode c = e.perform();
        t.easy = nullptr;
        if (t.error) std::rethrow_exception(std::exchange(t.error, nullptr));
        if (c == CURLE_OK) {
            t.easy = &e;
            if (!t.begun) t.begin();  // an empty body
            t.easy = nullptr;
            if (t.is_file) {
                out.remote = local;
            } else {
                out.remote.url = e.effective_url();
                out.remote.status = e.status();
                out.remote.validators = e.validators();
            }
            return true;
        }
        if (c == CURLE_HTTP_RETURNED_ERROR && e.status() == 416 && at > 0) {
            // The range lies beyond the file (it shrank or changed): fetch all of it.
            at = 0;
            t.restarted = true;
            f = {e.describe(c), true};
            return false;
        }
        f = {e.describe(c), e.transient(c)};
        if (t.begun) at = t.position;  // the next attempt resumes where this body stopped
        if (guard.empty()) guard = e.validators();
        return false;
    });
    out.received = t.received;
    out.restarted = t.restarted;
    return out;
}

}  // namespace aplspawn::image
