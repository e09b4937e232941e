//! The README shows the API as it is compiled and run.

/// The README's "API in one screen" is the region of
/// `examples/api_in_one_screen.rs` between its markers, which runs as a
/// doc-test: if either changes alone, the README would show code that does
/// not compile.
#[test]
fn the_readme_shows_the_api_example_as_it_compiles() {
    let example = include_str!("../../examples/api_in_one_screen.rs");
    let region = example
        .split("// --8<-- [start:api]\n")
        .nth(1)
        .and_then(|rest| rest.split("// --8<-- [end:api]").next())
        .expect("the example marks its region");
    let readme = include_str!("../../../README.md");
    assert!(
        readme.contains(&format!("```rust\n{region}```")),
        "README.md's \"API in one screen\" differs from the region of \
         etiquette-core/examples/api_in_one_screen.rs: copy it over"
    );
}
