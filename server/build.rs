//! Rebuilds the crate when an embedded file changes: the web UI
//! (`include_dir!`) and the migrations (`sqlx::migrate!`), new files included.

fn main() {
    println!("cargo:rerun-if-changed=web");
    println!("cargo:rerun-if-changed=migrations");
}
