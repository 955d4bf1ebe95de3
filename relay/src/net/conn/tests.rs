use super::*;

#[test]
fn an_unknown_hello_type_is_replaced_unless_it_is_a_plain_name() {
    let e = "malformed frame: unknown variant `\u{1b}]0;x\u{7}`, expected one of `h1`, `login` at line 1";
    assert_eq!(
        without_quoted_variant(e),
        "malformed frame: unknown variant `<invalid id, 6 bytes>`, expected one of `h1`, `login` at line 1"
    );
    let plain = "unknown variant `teleport`, expected one of `h1`";
    assert_eq!(without_quoted_variant(plain), plain);
    assert_eq!(without_quoted_variant("eof"), "eof");
}
