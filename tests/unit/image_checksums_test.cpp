// SHA256SUMS parsing, SHA-256 streaming, URL helpers and the pure parts of fetch.
#include "aplspawn/error.hpp"
#include "aplspawn/image/checksums.hpp"
#include "aplspawn/image/fetch.hpp"
#include "aplspawn/image/sha256.hpp"
#include "aplspawn/image/url.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace aplspawn;
using namespace aplspawn::image;

namespace {
const std::string kA = std::string(64, 'a');
const std::string kB = std::string(64, 'b');
}  // namespace

TEST_CASE("SHA256SUMS: GNU text and binary lines, BSD tags, comments and junk", "[image]") {
    std::string text = "# made by mkosi\n" + kA + "  debian-bookworm-latest.img\n" +
                       std::string(64, 'B') + " *debian-bookworm-latest.img.xz\r\n" +
                       "SHA256 (other.raw) = " + std::string(64, 'c') + "\n" +
                       "not a checksum line\n" + "1234  short.img\n" + "\n" + kA + "  ./dotted.img\n";
    auto entries = parse_sha256sums(text);
    REQUIRE(entries.size() == 4);
    CHECK(entries[0].name == "debian-bookworm-latest.img");
    CHECK(entries[1].name == "debian-bookworm-latest.img.xz");
    CHECK(entries[1].sha256 == kB);  // lower-cased
    CHECK(entries[2].name == "other.raw");
    CHECK(entries[3].name == "dotted.img");
    CHECK(find_sha256(text, "debian-bookworm-latest.img") == kA);
    CHECK(find_sha256(text, "debian-bookworm-latest.img.xz") == kB);
    CHECK(find_sha256(text, "other.raw") == std::string(64, 'c'));
    CHECK(find_sha256(text, "dotted.img") == kA);
    CHECK_FALSE(find_sha256(text, "missing.img"));
    CHECK_FALSE(find_sha256(text, "debian-bookworm-latest"));  // no prefix matches
}

TEST_CASE("SHA256SUMS listing one file twice with different sums is refused", "[image]") {
    std::string same = kA + "  x.img\n" + kA + "  x.img\n";
    CHECK(find_sha256(same, "x.img") == kA);
    std::string conflict = kA + "  x.img\n" + kB + "  x.img\n";
    CHECK_THROWS_WITH(find_sha256(conflict, "x.img"), Catch::Contains("twice"));
}

TEST_CASE("SHA-256 streamed in pieces equals the one-shot digest", "[image]") {
    // FIPS 180-2 test vectors.
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    std::string data;
    for (int i = 0; i < 100000; ++i) data += static_cast<char>(i * 7 + i / 13);
    Sha256 h;
    for (std::size_t at = 0; at < data.size();) {
        std::size_t n = std::min<std::size_t>(data.size() - at, 1 + at % 4099);
        h.update(std::string_view(data).substr(at, n));
        at += n;
    }
    CHECK(h.bytes() == data.size());
    CHECK(h.hex() == sha256_hex(data));
    h.reset();
    h.update("abc");
    CHECK(h.hex() == sha256_hex("abc"));
    CHECK(is_sha256_hex(kA));
    CHECK(is_sha256_hex(std::string(64, 'F')));
    CHECK_FALSE(is_sha256_hex(std::string(63, 'a')));
    CHECK_FALSE(is_sha256_hex(std::string(64, 'g')));
}

TEST_CASE("image URLs: scheme, published name, SHA256SUMS beside it, file paths", "[image]") {
    CHECK(url_scheme("HTTPS://h/x") == "https");
    CHECK(url_scheme("/no/scheme") == "");
    CHECK(url_file_name("http://h:8080/a/debian%2Bx.img.xz?sig=1#f") == "debian+x.img.xz");
    CHECK(url_file_name("file:///var/cache/repo/d.img") == "d.img");
    CHECK(sibling_url("http://h/a/b/x.img?token=1", "SHA256SUMS") == "http://h/a/b/SHA256SUMS");
    CHECK(sibling_url("file:///repo/x.img", "SHA256SUMS") == "file:///repo/SHA256SUMS");
    CHECK(file_url_path("file:///var/a%20b/x.img") == "/var/a b/x.img");
    CHECK(file_url_path("file://localhost/var/x.img") == "/var/x.img");
    CHECK(percent_decode("100%") == "100%");
    CHECK(percent_decode("%zz%41") == "%zzA");
}

TEST_CASE("image URLs are parsed by libcurl: what it would refuse to fetch is refused here", "[image]") {
    // An encoded '/' stays inside its segment; the name is decoded after the path is cut.
    CHECK(url_file_name("http://h/a/x%2Fy.img") == "x/y.img");
    CHECK(sibling_url("https://h:8443/a/b.img#frag", "SHA256SUMS") == "https://h:8443/a/SHA256SUMS");
    // file:// names this machine only with no host or "localhost" (RFC 8089); libcurl refuses
    // another host, and so does aplspawn, with the URL in the message.
    CHECK_THROWS_WITH(file_url_path("file://otherhost/x.img"),
                      Catch::Contains("file://otherhost/x.img") && Catch::Contains("not a URL"));
    CHECK(url_scheme("file://otherhost/x.img") == "");
}

TEST_CASE("fetch helpers: Content-Range, transient statuses, HTTP dates", "[image]") {
    auto r = parse_content_range("bytes 100-199/1000");
    REQUIRE(r);
    CHECK(r->start == 100);
    CHECK(r->end == 199);
    CHECK(r->total == 1000u);
    auto unknown = parse_content_range("bytes 5-9/*");
    REQUIRE(unknown);
    CHECK_FALSE(unknown->total);
    CHECK_FALSE(parse_content_range("bytes */1000"));
    CHECK_FALSE(parse_content_range("bytes 10-5/100"));
    CHECK_FALSE(parse_content_range("bytes 0-99/50"));
    CHECK_FALSE(parse_content_range("items 0-1/2"));
    for (long s : {500L, 502L, 503L, 504L, 408L, 429L}) CHECK(transient_http_status(s));
    for (long s : {200L, 304L, 400L, 403L, 404L, 410L, 416L}) CHECK_FALSE(transient_http_status(s));
    CHECK(http_reason(404) == "Not Found");
    CHECK(http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT");
}
