//! Rebuild when a migration is added: `sqlx::migrate!` embeds the folder's
//! files at compile time, and cargo does not watch the folder by itself.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations/audit");
}
