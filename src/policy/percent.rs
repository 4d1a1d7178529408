//! The one reader of `%XX` escapes in a path: framing (`check_path`) refuses what it reports as
//! malformed, normalization (`normalize`) keeps such bytes as they are.

/// One unit of a percent-encoded string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// A byte written as itself.
    Plain(u8),
    /// `%XX`: the byte it stands for.
    Escaped(u8),
    /// A `%` not followed by two hex digits (the `%` alone; what follows comes next).
    Malformed,
}

/// The units of `input`, in order.
pub(crate) fn units(input: &[u8]) -> impl Iterator<Item = Unit> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let b = *input.get(i)?;
        if b != b'%' {
            i += 1;
            return Some(Unit::Plain(b));
        }
        let hex = |c: Option<&u8>| c.and_then(|&c| (c as char).to_digit(16));
        match (hex(input.get(i + 1)), hex(input.get(i + 2))) {
            (Some(h), Some(l)) => {
                i += 3;
                Some(Unit::Escaped((h * 16 + l) as u8))
            }
            _ => {
                i += 1;
                Some(Unit::Malformed)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_escapes_plain_bytes_and_stray_percents() {
        use Unit::*;
        let got: Vec<_> = units(b"a%2F%e9%%4x%4").collect();
        assert_eq!(
            got,
            [
                Plain(b'a'),
                Escaped(b'/'),
                Escaped(0xe9),
                Malformed,
                Malformed,
                Plain(b'4'),
                Plain(b'x'),
                Malformed,
                Plain(b'4')
            ]
        );
    }
}
