//! Live capture (placeholder until wired).
