//! Lets the binaries and tests of this crate find libtorch at run time without LD_LIBRARY_PATH:
//! torch-sys tells dependents where libtorch is (`DEP_TCH_LIBTORCH_LIB`); we put that folder in the
//! rpath. `--no-as-needed` keeps `libtorch_cuda.so` linked even though no symbol of it is used
//! directly; without it a GPU machine would never see CUDA (docs/DESIGN.md, "Build set-up"; docs/gpu.md).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        let cuda = std::path::Path::new(&lib).join("libtorch_cuda.so");
        if cuda.exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-L{lib}");
            println!("cargo:rustc-link-arg=-ltorch_cuda");
            println!("cargo:rustc-link-arg=-ltorch");
            println!("cargo:rustc-link-arg=-Wl,--as-needed");
        }
    }
}
