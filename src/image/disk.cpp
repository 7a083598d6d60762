#include "aplspawn/image/disk.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/sys/fd.hpp"
#include "aplspawn/text.hpp"

#include <blkid/blkid.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <memory>

namespace aplspawn::image {
namespace {

struct KnownType {
    std::string_view uuid;
    std::string_view name;
};

// Discoverable Partitions Specification root types, and a few others for messages.
constexpr std::array kKnownTypes = {
    KnownType{"4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "root-x86-64"},
    KnownType{"44479540-f297-41b2-9af7-d131d5f0458a", "root-x86"},
    KnownType{"b921b045-1df0-41c3-af44-4c6f280d3fae", "root-arm64"},
    KnownType{"69dad710-2ce4-4e3c-b16c-21a1d49abed3", "root-arm"},
    KnownType{"72ec70a6-cf74-40e6-bd49-4bda08e8f224", "root-riscv64"},
    KnownType{"c31c45e6-3f39-412e-80fb-4809c4980599", "root-ppc64-le"},
    KnownType{"5eead9a9-fe09-4a1e-a1d7-520d00531306", "root-s390x"},
    KnownType{"77055800-792c-4f94-b39a-98c91b762bb6", "root-loongarch64"},
    KnownType{"0fc63daf-8483-4772-8e79-3d69d8477de4", "linux-generic"},
    KnownType{"c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "esp"},
    KnownType{"0657fd6d-a4ab-43c4-84e5-0933c84b4f4f", "swap"},
    KnownType{"bc13c2ff-59e6-4262-a352-b275fd6f7172", "xbootldr"},
    KnownType{"4d21b016-b534-45c2-a9fb-5c16e091fd2d", "var"},
    KnownType{"933ac7e1-2eb4-4f13-b844-0e14e2aef915", "home"},
    KnownType{"3b8f8425-20e0-4f3b-907f-1a25a76f98e8", "srv"},
};

constexpr std::uint64_t kGptFlagNoAuto = 1ull << 63;

bool is_linux_fs(const PartitionEntry& p) {
    return p.type == kLinuxFilesystemType || p.type == "0x83";
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

struct ProbeDeleter {
    void operator()(blkid_probe p) const { blkid_free_probe(p); }
};
using Probe = std::unique_ptr<std::remove_pointer_t<blkid_probe>, ProbeDeleter>;

Probe new_probe(int fd, std::uint64_t offset, std::uint64_t size, const std::string& what) {
    Probe pr(blkid_new_probe());
    if (!pr) throw Error(fmt::format("probe {}: blkid_new_probe failed", what));
    if (blkid_probe_set_device(pr.get(), fd, static_cast<blkid_loff_t>(offset),
                               static_cast<blkid_loff_t>(size)) != 0)
        throw Error(fmt::format("probe {}: cannot read {} bytes at offset {}", what, size, offset));
    return pr;
}

struct FsInfo {
    std::string type, label;
};

// The filesystem in [offset, offset+size) of fd, if libblkid recognises one.
FsInfo probe_filesystem(int fd, std::uint64_t offset, std::uint64_t size, const std::string& what) {
    Probe pr = new_probe(fd, offset, size, what);
    blkid_probe_enable_partitions(pr.get(), 0);
    blkid_probe_enable_superblocks(pr.get(), 1);
    blkid_probe_set_superblocks_flags(pr.get(), BLKID_SUBLKS_TYPE | BLKID_SUBLKS_LABEL);
    FsInfo info;
    if (blkid_do_safeprobe(pr.get()) != 0) return info;  // nothing, or ambivalent
    const char* v = nullptr;
    if (blkid_probe_lookup_value(pr.get(), "TYPE", &v, nullptr) == 0 && v) info.type = v;
    if (blkid_probe_lookup_value(pr.get(), "LABEL", &v, nullptr) == 0 && v) info.label = v;
    return info;
}

std::string describe(const PartitionEntry& p) {
    std::string s = fmt::format("{} ({})", p.number, type_name(p.type));
    if (!p.name.empty()) s += fmt::format(" named \"{}\"", p.name);
    s += p.fstype.empty() ? ", no filesystem" : fmt::format(", {}", p.fstype);
    return s;
}

}  // namespace

std::string RootPartition::mount_type() const {
    if (fstype == "ext2" || fstype == "ext3") return "ext4";
    return fstype;
}

std::string RootPartition::mount_data() const {
    std::string t = mount_type();
    if (t == "ext4") return "noload";
    if (t == "xfs") return "norecovery";
    return "";
}

std::string_view host_root_type() {
#if defined(__x86_64__)
    return "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";
#elif defined(__i386__)
    return "44479540-f297-41b2-9af7-d131d5f0458a";
#elif defined(__aarch64__)
    return "b921b045-1df0-41c3-af44-4c6f280d3fae";
#elif defined(__arm__)
    return "69dad710-2ce4-4e3c-b16c-21a1d49abed3";
#elif defined(__riscv) && __riscv_xlen == 64
    return "72ec70a6-cf74-40e6-bd49-4bda08e8f224";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return "c31c45e6-3f39-412e-80fb-4809c4980599";
#elif defined(__s390x__)
    return "5eead9a9-fe09-4a1e-a1d7-520d00531306";
#elif defined(__loongarch64)
    return "77055800-792c-4f94-b39a-98c91b762bb6";
#else
    return "";
#endif
}

std::string type_name(std::string_view type) {
    for (const auto& k : kKnownTypes)
        if (k.uuid == type) return std::string(k.name);
    if (type == "0x83") return "linux";
    if (type.empty()) return "no type";
    return std::string(type);
}

bool supported_fstype(std::string_view t) {
    return t == "squashfs" || t == "erofs" || t == "ext4" || t == "ext3" || t == "ext2" ||
           t == "btrfs" || t == "xfs";
}

std::expected<std::size_t, std::string> choose_root(const std::vector<PartitionEntry>& parts,
                                                    std::string_view root_type) {
    // 1. The architecture's DPS root type, unless marked no-auto.
    if (!root_type.empty())
        for (std::size_t i = 0; i < parts.size(); ++i)
            if (parts[i].type == root_type && !(parts[i].flags & kGptFlagNoAuto)) return i;
    // 2. A Linux-filesystem partition named or labelled "root".
    for (std::size_t i = 0; i < parts.size(); ++i)
        if (is_linux_fs(parts[i]) && (iequals(parts[i].name, "root") || parts[i].label == "root"))
            return i;
    // 3. The only Linux-filesystem partition.
    std::vector<std::size_t> linux_parts;
    for (std::size_t i = 0; i < parts.size(); ++i)
        if (is_linux_fs(parts[i])) linux_parts.push_back(i);
    if (linux_parts.size() == 1) return linux_parts.front();

    std::string list;
    for (const auto& p : parts) list += (list.empty() ? "" : "; ") + describe(p);
    return std::unexpected(fmt::format(
        "no partition of the root type {} for this architecture, none named or labelled \"root\", "
        "and {} Linux filesystem partitions (need exactly one); partitions: {}",
        type_name(root_type), linux_parts.size(), list.empty() ? "none" : list));
}

RootPartition find_root_partition(const fs::path& image) {
    sys::UniqueFd fd(::open(image.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw_errno(fmt::format("find root partition in {}: open", image.string()));
    return find_root_partition(fd.get(), image.string());
}

RootPartition find_root_partition(int fd, const std::string& what) {
    const std::string context = fmt::format("find root partition in {}", what);
    struct stat st;
    if (::fstat(fd, &st) < 0) throw_errno(context + ": stat");
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        throw Error(context + ": not a regular file");
    if (st.st_size == 0) throw Error(context + ": the file is empty");
    const auto file_size = static_cast<std::uint64_t>(st.st_size);

    std::vector<PartitionEntry> parts;
    std::string table_type;
    {
        Probe pr = new_probe(fd, 0, 0, what);
        blkid_probe_enable_superblocks(pr.get(), 0);
        blkid_probe_enable_partitions(pr.get(), 1);
        blkid_probe_set_partitions_flags(pr.get(), BLKID_PARTS_ENTRY_DETAILS);
        blkid_partlist ls = blkid_probe_get_partitions(pr.get());
        if (ls) {
            if (blkid_parttable tab = blkid_partlist_get_table(ls))
                if (const char* t = blkid_parttable_get_type(tab)) table_type = t;
            int n = blkid_partlist_numof_partitions(ls);
            for (int i = 0; i < n; ++i) {
                blkid_partition par = blkid_partlist_get_partition(ls, i);
                if (!par) continue;
                PartitionEntry e;
                e.number = blkid_partition_get_partno(par);
                if (const char* t = blkid_partition_get_type_string(par)) {
                    e.type = text::ascii_lower(t);
                } else {
                    e.type = fmt::format("0x{:02x}", blkid_partition_get_type(par));
                }
                if (const char* nm = blkid_partition_get_name(par)) e.name = nm;
                e.offset = static_cast<std::uint64_t>(blkid_partition_get_start(par)) * 512;
                e.size = static_cast<std::uint64_t>(blkid_partition_get_size(par)) * 512;
                e.flags = blkid_partition_get_flags(par);
                parts.push_back(std::move(e));
            }
        }
    }

    RootPartition root;
    if (parts.empty()) {
        // No partition table (or an empty one): the image may be the filesystem itself.
        FsInfo fsi = probe_filesystem(fd, 0, file_size, what);
        if (fsi.type.empty())
            throw Error(context + (table_type.empty()
                                       ? ": neither a partition table nor a filesystem libblkid knows"
                                       : fmt::format(": the {} partition table has no partitions",
                                                     table_type)));
        root.offset = 0;
        root.size = file_size;
        root.fstype = fsi.type;
        root.number = 0;
        root.how = fmt::format("bare {} filesystem, no partition table", fsi.type);
    } else {
        for (auto& p : parts) {
            if (p.offset + p.size > file_size || p.size == 0) continue;  // truncated: no fs read
            FsInfo fsi = probe_filesystem(fd, p.offset, p.size, what);
            p.fstype = fsi.type;
            p.label = fsi.label;
        }
        auto chosen = choose_root(parts, host_root_type());
        if (!chosen) throw Error(fmt::format("{}: {}", context, chosen.error()));
        const PartitionEntry& p = parts[*chosen];
        if (p.offset + p.size > file_size)
            throw Error(fmt::format("{}: partition {} ends at byte {}, beyond the end of the file "
                                    "({} bytes): the image is truncated",
                                    context, p.number, p.offset + p.size, file_size));
        root.offset = p.offset;
        root.size = p.size;
        root.fstype = p.fstype;
        root.number = p.number;
        root.how = fmt::format("{} partition {}, type {}{}", table_type.empty() ? "" : table_type,
                               p.number, type_name(p.type),
                               p.name.empty() ? "" : fmt::format(", named \"{}\"", p.name));
        if (root.how.front() == ' ') root.how.erase(0, 1);
    }
    if (root.fstype.empty())
        throw Error(fmt::format("{}: {} holds no filesystem libblkid recognises", context, root.how));
    if (!supported_fstype(root.fstype))
        throw Error(fmt::format("{}: {} holds {}; aplspawn mounts squashfs, erofs, ext4, btrfs "
                                "or xfs",
                                context, root.how, root.fstype));
    return root;
}

}  // namespace aplspawn::image
