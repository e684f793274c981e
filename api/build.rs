// The embedded web builds (api/src/playground.rs) are read at compile time: rebuild when a
// file in them is added, changed or removed.
fn main() {
    println!("cargo:rerun-if-changed=../playground/dist");
}
