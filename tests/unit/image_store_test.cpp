// The image store's layout: versions by checksum, the current one behind an atomically replaced
// symlink, records, partial downloads, pruning (loop devices are the integration tests' part).
#include "aplspawn/error.hpp"
#include "aplspawn/image/checksums.hpp"
#include "aplspawn/image/sha256.hpp"
#include "aplspawn/image/store.hpp"
#include "aplspawn/sys/fs.hpp"

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <filesystem>

using namespace aplspawn;
using namespace aplspawn::image;
namespace fs = std::filesystem;

namespace {

struct Tmp {
    fs::path path;
    Tmp() {
        std::string t = (fs::temp_directory_path() / "aplspawn-store.XXXXXX").string();
        REQUIRE(::mkdtemp(t.data()));
        path = t;
    }
    ~Tmp() { fs::remove_all(path); }
};

// A finished download in .partial, as pull leaves it before install.
fs::path staged(const Store& s, const std::string& content) {
    sys::ensure_dir(s.partial_dir());
    fs::path f = s.partial_path();
    sys::write_file_atomic(f, content, 0644);
    return f;
}

VersionInfo info_for(const std::string& content) {
    VersionInfo i;
    i.sha256 = sha256_hex(content);
    i.published_sha256 = i.sha256;
    i.checksum_source = "image.sha256";
    i.url = "http://127.0.0.1/x.img";
    i.size = content.size();
    i.validators = {"\"e1\"", "Sun, 06 Nov 1994 08:49:37 GMT"};
    return i;
}

ino_t inode(const fs::path& p) {
    struct stat st;
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_ino;
}

}  // namespace

TEST_CASE("install: a read-only version named by its checksum, NAME a relative symlink to it", "[image]") {
    Tmp t;
    Store s(t.path / "store", "debian-bookworm-latest.img");
    sys::ensure_dir(s.dir());
    CHECK_FALSE(s.current());
    Version v = s.install(staged(s, "one"), info_for("one"));
    CHECK(v.path == s.versions_dir() / (sha256_hex("one") + ".img"));
    CHECK(fs::is_symlink(s.current_path()));
    CHECK(fs::read_symlink(s.current_path()) == fs::path("by-sha256") / (sha256_hex("one") + ".img"));
    CHECK(sys::read_file(s.current_path()) == "one");
    CHECK((fs::status(v.path).permissions() & fs::perms::owner_write) == fs::perms::none);
    CHECK_FALSE(fs::exists(s.partial_path()));
    auto cur = s.current();
    REQUIRE(cur);
    REQUIRE(cur->info);
    CHECK(cur->info->name == "debian-bookworm-latest.img");
    CHECK(cur->info->published_sha256 == sha256_hex("one"));
    CHECK(cur->info->validators.etag == "\"e1\"");
    // The record only counts while the file is what it describes.
    fs::permissions(v.path, fs::perms::owner_write, fs::perm_options::add);
    sys::write_file_atomic(v.path, "changed!", 0644);
    REQUIRE(s.current());
    CHECK_FALSE(s.current()->info);
}

TEST_CASE("a new version replaces the symlink, the old one is pruned when unused", "[image]") {
    Tmp t;
    Store s(t.path, "img.raw");
    Version one = s.install(staged(s, "one"), info_for("one"));
    ino_t one_inode = inode(one.path);
    Version two = s.install(staged(s, "two"), info_for("two"));
    CHECK(two.path.extension() == ".raw");
    CHECK(sys::read_file(s.current_path()) == "two");
    // The old version was never written to: same inode, same bytes, until pruned.
    CHECK(inode(one.path) == one_inode);
    CHECK(sys::read_file(one.path) == "one");
    auto pruned = s.prune();
    REQUIRE(pruned.removed.size() == 1);
    CHECK(pruned.removed[0] == one.path);
    CHECK(pruned.in_use.empty());
    CHECK_FALSE(fs::exists(one.path));
    CHECK_FALSE(fs::exists(s.versions_dir() / (sha256_hex("one") + ".json")));
    CHECK(fs::exists(two.path));
    CHECK(s.prune().removed.empty());
}

TEST_CASE("installing bytes that are stored already keeps the stored file", "[image]") {
    Tmp t;
    Store s(t.path, "x.img");
    Version a = s.install(staged(s, "same"), info_for("same"));
    ino_t before = inode(a.path);
    Version b = s.install(staged(s, "same"), info_for("same"));
    CHECK(b.path == a.path);
    CHECK(inode(b.path) == before);
    CHECK_FALSE(fs::exists(s.partial_path()));
}

TEST_CASE("pruning spares versions other names point at and other images' versions", "[image]") {
    Tmp t;
    Store a(t.path, "a.img"), b(t.path, "b.img");
    Version a1 = a.install(staged(a, "shared"), info_for("shared"));
    Version b1 = b.install(staged(b, "b-one"), info_for("b-one"));
    // b.img's current version is a.img's old one (same bytes): a's prune must keep it.
    Version b2 = b.install(staged(b, "shared"), info_for("shared"));
    CHECK(b2.path == a1.path);
    a.install(staged(a, "a-two"), info_for("a-two"));
    auto pruned = a.prune();
    CHECK(pruned.removed.empty());
    CHECK(fs::exists(a1.path));
    CHECK(fs::exists(b1.path));  // b's old version: b's business
    CHECK(b.prune().removed == std::vector<fs::path>{b1.path});
}

TEST_CASE("a file found at NAME is recorded in place by a hard link, never moved", "[image]") {
    Tmp t;
    Store s(t.path, "x.img");
    sys::write_file_atomic(s.current_path(), "by hand", 0644);
    ino_t before = inode(s.current_path());
    auto cur = s.current();
    REQUIRE(cur);
    CHECK_FALSE(cur->info);
    Version v = s.install(s.current_path(), info_for("by hand"));
    CHECK(fs::is_symlink(s.current_path()));
    CHECK(inode(v.path) == before);
    CHECK(sys::read_file(s.current_path()) == "by hand");
}

TEST_CASE("a dangling NAME is no current version, NAME as a directory is an error", "[image]") {
    Tmp t;
    Store s(t.path, "x.img");
    fs::create_symlink("by-sha256/gone.img", s.current_path());
    CHECK_FALSE(s.current());
    fs::remove(s.current_path());
    fs::create_directory(s.current_path());
    CHECK_THROWS_AS(s.current(), Error);
}

TEST_CASE("partial downloads: record, size, removal", "[image]") {
    Tmp t;
    Store s(t.path, "x.img");
    CHECK_FALSE(s.partial());
    sys::ensure_dir(s.partial_dir());
    sys::write_file_atomic(s.partial_path(), "12345", 0644);
    CHECK_FALSE(s.partial());  // no record: not resumable
    s.write_partial_info({"http://h/x.img.zst", {"\"e\"", ""}, 999, "zstd"});
    auto p = s.partial();
    REQUIRE(p);
    CHECK(p->size == 5);
    CHECK(p->info.url == "http://h/x.img.zst");
    CHECK(p->info.validators.etag == "\"e\"");
    CHECK(p->info.size == 999u);
    CHECK(p->info.compression == "zstd");
    sys::write_file_atomic(s.unpack_path(), "u", 0644);
    CHECK(s.remove_partial());
    CHECK_FALSE(fs::exists(s.partial_path()));
    CHECK_FALSE(fs::exists(s.partial_info_path()));
    CHECK_FALSE(fs::exists(s.unpack_path()));
    CHECK_FALSE(s.remove_partial());
}

TEST_CASE("version records round-trip through JSON, broken ones are ignored", "[image]") {
    VersionInfo i = info_for("x");
    i.name = "x.img";
    i.compression = "xz";
    i.stored_at = 1700000000;
    auto back = version_info_from_json(to_json(i));
    REQUIRE(back);
    CHECK(back->sha256 == i.sha256);
    CHECK(back->compression == "xz");
    CHECK(back->validators == i.validators);
    CHECK(back->stored_at == 1700000000);
    CHECK_FALSE(version_info_from_json("{"));
    CHECK_FALSE(version_info_from_json(R"({"name":"x","sha256":"nothex","size":1})"));
}

TEST_CASE("SHA256SUMS lines: one per image, replaced in place of none, others kept", "[image]") {
    Tmp t;
    const fs::path sums = t.path / "SHA256SUMS";
    const std::string a(64, 'a'), b(64, 'b'), c(64, 'c');
    sys::write_file_atomic(sums, a + "  debian-bookworm-latest.img\n" + b + " *golden.img\n", 0644);
    set_sums_line(t.path, "golden.img", c);  // a new snapshot under an old name
    std::string text = sys::read_file(sums);
    CHECK(find_sha256(text, "golden.img") == c);
    CHECK(find_sha256(text, "debian-bookworm-latest.img") == a);
    CHECK(parse_sha256sums(text).size() == 2);
    set_sums_line(t.path, "gold2.img", b);
    CHECK(parse_sha256sums(sys::read_file(sums)).size() == 3);
    set_sums_line(t.path, "golden.img", "");  // removed
    set_sums_line(t.path, "gold2.img", "");
    CHECK(sys::read_file(sums) == a + "  debian-bookworm-latest.img\n");
    set_sums_line(t.path, "debian-bookworm-latest.img", "");
    CHECK_FALSE(fs::exists(sums));  // nothing listed: no file
}
