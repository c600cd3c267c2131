// Snapshots, restores and clones of volume data with libarchive: a volume's tree (a
// directory, or a block volume's single sparse file) is written as a pax tar archive
// whose entries are named "data" (the root) and "data/<relative path>"; extraction
// maps "data" back onto the destination. What survives a round trip: file contents
// (holes of sparse files kept: pax sparse entries on write, ARCHIVE_EXTRACT_SPARSE on
// extract), modes incl. setuid/sticky, owners (numeric), mtimes, symlinks (never
// followed), hard links, xattrs, device nodes and fifos. Mount points below the tree
// are not crossed.
//
// Thread-safety: the functions are thread-safe (no chdir: every path is absolute).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace berth::csi {

// Writes `source` (a directory or a regular file) to the archive `archive_path`,
// through "<archive_path>.tmp" renamed at the end and fsynced, so a crash leaves no
// half archive under the final name. Returns the archive's size in bytes.
// Errors: the libarchive message with the path that failed.
StatusOr<int64_t> archiveTree(const std::string& source, const std::string& archive_path);

// Extracts an archive made by archiveTree() to `dest`: for a directory archive `dest`
// is a directory (created if missing, its mode and owner set from the root entry);
// for a file archive `dest` is the file to create. Entries outside "data" or with ".."
// components are rejected (InvalidArgument: the archive is not ours).
Status extractArchive(const std::string& archive_path, const std::string& dest);

// Copies `source` (directory or regular file) to `dest` with the same fidelity as an
// archive round trip, without the intermediate archive (CSI volume clones).
Status copyTree(const std::string& source, const std::string& dest);

}  // namespace berth::csi
