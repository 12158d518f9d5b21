// Corpus extraction from unpacked Debian packages (the packages: scripts/get-corpus).
#include "train/corpus.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "sim/core/error.h"
#include "train/atomic_file.h"
#include "train/sha256.h"

namespace moecast::train {
namespace {

namespace fs = std::filesystem;

uint32_t le32(const std::string& b, size_t at) {
    return uint32_t(uint8_t(b[at])) | uint32_t(uint8_t(b[at + 1])) << 8 | uint32_t(uint8_t(b[at + 2])) << 16 |
           uint32_t(uint8_t(b[at + 3])) << 24;
}
uint32_t be32(const std::string& b, size_t at) {
    return uint32_t(uint8_t(b[at])) << 24 | uint32_t(uint8_t(b[at + 1])) << 16 | uint32_t(uint8_t(b[at + 2])) << 8 |
           uint32_t(uint8_t(b[at + 3]));
}

// Inflates one zlib stream starting at `in`; `used` receives the compressed bytes consumed.
std::string inflate_stream(const char* in, size_t avail, size_t size_hint, size_t* used, const std::string& source) {
    z_stream z{};
    if (inflateInit(&z) != Z_OK) throw std::runtime_error("zlib inflateInit failed");
    std::string out;
    out.resize(std::max<size_t>(size_hint, 1024));
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in));
    z.avail_in = static_cast<uInt>(avail);
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        if (z.total_out == out.size()) out.resize(out.size() * 2);
        z.next_out = reinterpret_cast<Bytef*>(out.data() + z.total_out);
        z.avail_out = static_cast<uInt>(out.size() - z.total_out);
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
            inflateEnd(&z);
            throw sim::InputError(source, 0, "", "a valid zlib stream (inflate error " + std::to_string(rc) + ")");
        }
    }
    out.resize(z.total_out);
    if (used) *used = z.total_in;
    inflateEnd(&z);
    return out;
}

std::string first_existing(const std::string& dir, std::initializer_list<const char*> names) {
    for (const char* n : names)
        if (fs::exists(fs::path(dir) / n)) return (fs::path(dir) / n).string();
    return "";
}

bool is_block_tag(std::string_view name) {
    static const char* kBlock[] = {"div",     "p",  "lb",   "l",    "lg",   "title", "milestone",
                                   "chapter", "br", "list", "item", "head", "verse"};
    for (const char* b : kBlock)
        if (name == b) return true;
    return false;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

// Decodes one entity at s[i] == '&'; returns the index after it (or i + 1 if not an entity).
size_t unescape_at(const std::string& s, size_t i, std::string& out) {
    const size_t semi = s.find(';', i);
    if (semi == std::string::npos || semi - i > 10) {
        out += '&';
        return i + 1;
    }
    const std::string name = s.substr(i + 1, semi - i - 1);
    if (name == "amp")
        out += '&';
    else if (name == "lt")
        out += '<';
    else if (name == "gt")
        out += '>';
    else if (name == "quot")
        out += '"';
    else if (name == "apos")
        out += '\'';
    else if (name == "nbsp")
        out += ' ';
    else if (name.size() > 1 && name[0] == '#') {
        const bool hex = name[1] == 'x' || name[1] == 'X';
        try {
            append_utf8(out, static_cast<uint32_t>(std::stoul(name.substr(hex ? 2 : 1), nullptr, hex ? 16 : 10)));
        } catch (const std::exception&) {
            out += '&';
            return i + 1;
        }
    } else {
        out += '&';
        return i + 1;
    }
    return semi + 1;
}

// Trims every line and collapses runs of blanks to one space; empty lines are dropped, or with
// keep_paragraphs runs of them become one empty line (prose whose paragraphs are blank-separated).
std::string collapse_whitespace(const std::string& s, bool keep_paragraphs = false) {
    std::string out;
    out.reserve(s.size());
    std::string line;
    auto flush = [&] {
        while (!line.empty() && line.back() == ' ') line.pop_back();
        if (!line.empty()) {
            out += line;
            out += '\n';
        } else if (keep_paragraphs && !out.empty() && out.back() == '\n' &&
                   (out.size() < 2 || out[out.size() - 2] != '\n')) {
            out += '\n';
        }
        line.clear();
    };
    for (char c : s) {
        if (c == '\n') {
            flush();
        } else if (c == ' ' || c == '\t' || c == '\r') {
            if (!line.empty() && line.back() != ' ') line += ' ';
        } else {
            line += c;
        }
    }
    flush();
    return out;
}

std::string changelog_version(const std::string& root, const std::string& package) {
    const std::string path = root + "/usr/share/doc/" + package + "/changelog.Debian.gz";
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) return "unknown";
    char buf[512] = {};
    const int n = gzread(f, buf, sizeof(buf) - 1);
    gzclose(f);
    const std::string head(buf, n > 0 ? n : 0);
    const size_t open = head.find('('), close = head.find(')');
    if (open == std::string::npos || close == std::string::npos || close < open) return "unknown";
    return head.substr(open + 1, close - open - 1);
}

// Index of the first part at which the cumulative size reaches `fraction` of the total.
size_t split_index(const std::vector<std::string>& parts, double fraction) {
    size_t total = 0;
    for (const auto& p : parts) total += p.size();
    size_t acc = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
        if (static_cast<double>(acc) >= fraction * static_cast<double>(total)) return i;
        acc += parts[i].size();
    }
    return parts.size();
}

std::string join(const std::vector<std::string>& parts, size_t begin, size_t end) {
    std::string out;
    for (size_t i = begin; i < end; ++i) out += parts[i];
    return out;
}

}  // namespace

std::vector<std::string> read_sword_blocks(const std::string& dir) {
    std::vector<std::string> blocks;
    bool any = false;
    for (const char* testament : {"ot", "nt"}) {
        for (const char* kind : {"b", "c", "v"}) {  // book, chapter, verse blocks
            const std::string base = std::string(testament) + "." + kind + "z";
            const std::string idx_path = first_existing(dir, {(base + "s").c_str()});
            const std::string dat_path = first_existing(dir, {(base + "z").c_str()});
            if (idx_path.empty() || dat_path.empty()) continue;
            any = true;
            const std::string idx = read_file(idx_path);
            const std::string dat = read_file(dat_path);
            for (size_t at = 0; at + 12 <= idx.size(); at += 12) {
                const uint32_t off = le32(idx, at), size = le32(idx, at + 4), raw = le32(idx, at + 8);
                if (size == 0) continue;
                if (static_cast<size_t>(off) + size > dat.size())
                    throw sim::InputError(idx_path, 0, "", "block offsets inside " + dat_path);
                blocks.push_back(inflate_stream(dat.data() + off, size, raw, nullptr, dat_path));
            }
        }
    }
    if (!any) throw sim::InputError(dir, 0, "", "a SWORD zText/zCom module (ot/nt .?zs/.?zz files)");
    return blocks;
}

std::string osis_to_text(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        const char c = s[i];
        if (c == '&') {
            i = unescape_at(s, i, out);
            continue;
        }
        if (c != '<') {
            out += c;
            ++i;
            continue;
        }
        const size_t close = s.find('>', i);
        if (close == std::string::npos) break;  // truncated tag at the end of a block
        const bool end_tag = s[i + 1] == '/';
        const bool self_closing = s[close - 1] == '/';
        size_t n0 = i + (end_tag ? 2 : 1), n1 = n0;
        while (n1 < close && s[n1] != ' ' && s[n1] != '/' && s[n1] != '>') ++n1;
        const std::string_view name(s.data() + n0, n1 - n0);
        i = close + 1;
        if (name == "note" && !end_tag && !self_closing) {
            // Skip to the matching </note> (notes may nest).
            int depth = 1;
            while (depth > 0 && i < s.size()) {
                const size_t open = s.find("<note", i), shut = s.find("</note>", i);
                if (shut == std::string::npos) {
                    i = s.size();
                    break;
                }
                if (open != std::string::npos && open < shut) {
                    const size_t e = s.find('>', open);
                    if (e != std::string::npos && s[e - 1] != '/') ++depth;
                    i = e == std::string::npos ? s.size() : e + 1;
                } else {
                    --depth;
                    i = shut + 7;
                }
            }
            continue;
        }
        if (is_block_tag(name)) out += '\n';
    }
    return collapse_whitespace(out);
}

std::vector<std::vector<std::string>> read_rdb_character_vectors(const std::string& path) {
    const std::string b = read_file(path);
    std::vector<std::vector<std::string>> out;
    size_t at = 0;
    while (at + 4 < b.size()) {
        const uint32_t raw = be32(b, at);
        size_t used = 0;
        const std::string r = inflate_stream(b.data() + at + 4, b.size() - at - 4, raw, &used, path);
        at += 4 + used;
        // XDR serialisation: "X\n", version, writer and minimum R versions, [encoding], item.
        if (r.size() < 14 || r[0] != 'X' || r[1] != '\n')
            throw sim::InputError(path, 0, "", "R XDR serialisations (\"X\\n\" header)");
        size_t p = 2;
        const uint32_t version = be32(r, p);
        p += 12;
        if (version == 3) p += 4 + be32(r, p);
        const uint32_t flags = be32(r, p);
        p += 4;
        if ((flags & 0xFF) != 16) continue;  // not a character vector (STRSXP)
        const uint32_t n = be32(r, p);
        p += 4;
        std::vector<std::string> strings;
        for (uint32_t k = 0; k < n && p + 8 <= r.size(); ++k) {
            if ((be32(r, p) & 0xFF) != 9) throw sim::InputError(path, 0, "", "CHARSXP elements in a character vector");
            const int32_t len = static_cast<int32_t>(be32(r, p + 4));
            p += 8;
            if (len < 0) {  // NA_character_
                strings.emplace_back();
                continue;
            }
            if (p + static_cast<size_t>(len) > r.size())
                throw sim::InputError(path, 0, "", "string lengths inside the record");
            strings.emplace_back(r.substr(p, static_cast<size_t>(len)));
            p += static_cast<size_t>(len);
        }
        out.push_back(std::move(strings));
    }
    return out;
}

std::string gutenberg_body(const std::string& text) {
    std::string t;
    t.reserve(text.size());
    size_t i = text.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;
    for (; i < text.size(); ++i)
        if (text[i] != '\r') t += text[i];
    size_t begin = t.find("*** START OF");
    begin = begin == std::string::npos ? 0 : t.find('\n', begin);
    begin = begin == std::string::npos ? 0 : begin + 1;
    size_t end = t.size();
    for (const char* marker : {"*** END OF", "End of the Project Gutenberg", "End of Project Gutenberg"}) {
        const size_t e = t.find(marker, begin);
        if (e != std::string::npos) end = std::min(end, e);
    }
    std::string body = t.substr(begin, end - begin);
    while (!body.empty() && (body.front() == '\n' || body.front() == ' ')) body.erase(body.begin());
    while (!body.empty() && (body.back() == '\n' || body.back() == ' ')) body.pop_back();
    return body + "\n";
}

std::string CorpusManifest::text() const {
    std::ostringstream s;
    s << "# moecast default corpus (scripts/get-corpus); sources from the Debian archive\n";
    s << "# source package version clean_bytes val_bytes\n";
    for (const auto& src : sources)
        s << "source " << src.name << " " << src.package << " " << src.version << " " << src.bytes << " "
          << src.val_bytes << "\n";
    s << "# file bytes sha256\n";
    for (const auto& f : files) s << "file " << f.name << " " << f.bytes << " " << f.sha256 << "\n";
    return s.str();
}

CorpusManifest extract_default_corpus(const std::string& root, const std::string& out_dir) {
    const std::string sword = root + "/usr/share/sword/modules";
    const std::string rlib = root + "/usr/lib/R/site-library";
    CorpusManifest m;
    std::string train, val, literary;

    // Treasury of David: one block per psalm; the last 10 % (whole psalms) is held out.
    {
        std::vector<std::string> psalms;
        for (const auto& b : read_sword_blocks(sword + "/comments/zcom/tdavid")) psalms.push_back(osis_to_text(b));
        const size_t cut = split_index(psalms, 0.9);
        const std::string tr = join(psalms, 0, cut), va = join(psalms, cut, psalms.size());
        train += tr;
        val += va;
        m.sources.push_back({"tdavid", "sword-comm-tdavid", changelog_version(root, "sword-comm-tdavid"),
                             int64_t(tr.size() + va.size()), int64_t(va.size())});
    }
    for (const auto& [name, package, dir] : {std::tuple{"mhcc", "sword-comm-mhcc", "/comments/zcom/mhcc"},
                                             std::tuple{"web", "sword-text-web", "/texts/ztext/engWEB2015eb"}}) {
        std::string text;
        for (const auto& b : read_sword_blocks(sword + dir)) text += osis_to_text(b);
        train += text;
        m.sources.push_back({name, package, changelog_version(root, package), int64_t(text.size()), 0});
    }
    // Austen: six novels, one line per element; Persuasion is held out.
    {
        int64_t bytes = 0, held = 0;
        const auto novels = read_rdb_character_vectors(rlib + "/janeaustenr/data/Rdata.rdb");
        if (novels.size() != 6) throw sim::InputError(rlib + "/janeaustenr/data/Rdata.rdb", 0, "", "six novels");
        for (const auto& lines : novels) {
            std::string text;
            for (const auto& l : lines) text += l + "\n";
            text = collapse_whitespace(text, true);
            bytes += int64_t(text.size());
            std::string title = lines.empty() ? "" : lines[0];
            std::transform(title.begin(), title.end(), title.begin(), ::toupper);
            const bool persuasion = title.find("PERSUASION") != std::string::npos;
            if (persuasion) {
                val += text;
                literary += text;
                held += int64_t(text.size());
            } else {
                train += text;
            }
        }
        m.sources.push_back(
            {"austen", "r-cran-janeaustenr", changelog_version(root, "r-cran-janeaustenr"), bytes, held});
        if (held == 0) throw sim::InputError(rlib + "/janeaustenr/data/Rdata.rdb", 0, "", "Persuasion");
    }
    // Moby Dick: the last 10 % (whole chapters) is held out.
    {
        const auto vecs = read_rdb_character_vectors(rlib + "/tokenizers/data/Rdata.rdb");
        if (vecs.empty() || vecs[0].empty())
            throw sim::InputError(rlib + "/tokenizers/data/Rdata.rdb", 0, "", "the mobydick string");
        const std::string body = gutenberg_body(vecs[0][0]);
        size_t cut = body.find("\nCHAPTER ", body.size() * 9 / 10);
        cut = cut == std::string::npos ? body.size() : cut + 1;
        train += body.substr(0, cut);
        val += body.substr(cut);
        literary += body.substr(cut);
        m.sources.push_back({"mobydick", "r-cran-tokenizers", changelog_version(root, "r-cran-tokenizers"),
                             int64_t(body.size()), int64_t(body.size() - cut)});
    }
    fs::create_directories(out_dir);
    for (const auto& [name, text] : {std::pair<const char*, const std::string*>{"train.txt", &train},
                                     {"val.txt", &val},
                                     {"val_literary.txt", &literary}}) {
        write_file_atomic(out_dir + "/" + name, *text);
        m.files.push_back({name, int64_t(text->size()), sha256_hex(*text)});
    }
    write_file_atomic(out_dir + "/MANIFEST", m.text());
    return m;
}

}  // namespace moecast::train
