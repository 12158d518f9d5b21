// The default training corpus, extracted from Debian packages with zlib only (no libsword, no R):
// SWORD zText/zCom modules (OSIS markup stripped, notes dropped) and R lazy-load data (.rdb, the
// CHARSXP strings of XDR serialisations). Writes train.txt, val.txt, val_literary.txt and a
// MANIFEST (package versions, byte counts, sha256). Fetching the packages is scripts/get-corpus.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moecast::train {

// One decompressed SWORD block of OSIS text (a book or chapter, in canonical order).
std::vector<std::string> read_sword_blocks(const std::string& module_dir);
// OSIS to plain text: drops <note>...</note>, block tags become newlines, other tags vanish with
// no space, entities are unescaped, whitespace runs collapse, empty lines are dropped.
std::string osis_to_text(const std::string& osis);

// Every character vector stored in an R lazy-load database (data/Rdata.rdb), record by record.
std::vector<std::vector<std::string>> read_rdb_character_vectors(const std::string& rdb_path);
// Project Gutenberg body: BOM and CRLF removed, text between the START and END markers.
std::string gutenberg_body(const std::string& text);

struct CorpusFile {
    std::string name;  // "train.txt"
    int64_t bytes = 0;
    std::string sha256;
};
struct CorpusSource {
    std::string name;       // "tdavid"
    std::string package;    // "sword-comm-tdavid"
    std::string version;    // from the package's changelog.Debian.gz
    int64_t bytes = 0;      // clean bytes extracted
    int64_t val_bytes = 0;  // of which held out
};
struct CorpusManifest {
    std::vector<CorpusSource> sources;
    std::vector<CorpusFile> files;
    std::string text() const;  // the MANIFEST file's contents
};

// root: a tree where the five .deb packages were unpacked (dpkg-deb -x). Writes into out_dir.
// Split by document: val = Persuasion + the last 10 % of Treasury of David (whole psalms) + the
// last 10 % of Moby Dick (whole chapters); val_literary.txt is the Austen + Moby Dick part of val.
CorpusManifest extract_default_corpus(const std::string& root, const std::string& out_dir);

}  // namespace moecast::train
