//! Vendor dialects. Each translates its wire format to core calls and back; none decides, and
//! none uses another.

pub mod clerk;
pub mod equisoft;
pub mod trinsic;

/// `snake_case` as `camelCase`: how the Trinsic and Equisoft wires spell the field names core
/// errors use. A name without underscores is returned as it is.
pub(crate) fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn camel_case_of_core_field_names() {
        assert_eq!(super::camel_case("redirect_url"), "redirectUrl");
        assert_eq!(super::camel_case("session_id"), "sessionId");
        assert_eq!(super::camel_case("providers"), "providers");
        assert_eq!(super::camel_case("redirectUrl"), "redirectUrl");
    }
}
