"""Files on disk, by concern; import each name from the module that owns it (this package re-exports nothing).

- io.atomic: atomic file writes with the user's umask, canonical JSON (dumps_json), and read_json, the one JSON
  reader (a missing or damaged file is a one-line GrowlmError).
- io.temporaries: the temp names an atomic write uses and the lock (LOCK_FILE), and removing what a killed writer
  left (remove_stale_temporaries).
- io.ownership: what growlm made: folder marks (MARK_FILE, mark_folder, claim_folder, add_entries), marks in
  written files (PNG_METADATA, HTML_MARK, MARKDOWN_MARK), and recognising both (growlm_kind, growlm_file).
- io.outputs: where a command may write: check_output, check_output_file, check_replaceable (what `force` may
  replace), check_not_input, clear_folder, and atomic_dir, which builds an output folder and swaps it in.
- io.hashing: sha256 of bytes, files and folders.

The test-only fault points are growlm.faults (crash_point).
"""
