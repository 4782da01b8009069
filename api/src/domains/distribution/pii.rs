//! PII in message bodies: email addresses, phone numbers, card numbers (Luhn-checked) and
//! IBANs (mod-97-checked). Offsets count characters (Unicode scalar values) of the body,
//! end exclusive. A digit run that fails Luhn is no card; it may still be a phone number
//! when it is short enough to be one. A phone number has 7 to 15 digits after a `+`, or
//! 9 to 15 without (fewer would take dates and quantities for numbers).

/// The kind of PII, as stored in `pii_detections.kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An email address.
    Email,
    /// A phone number: 7 to 15 digits (E.164's longest), `+` and separators allowed.
    Phone,
    /// A payment card number: 13 to 19 digits passing Luhn.
    Card,
    /// An IBAN passing its mod-97 check.
    Iban,
}

impl Kind {
    /// The kind as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Card => "credit_card",
            Self::Iban => "iban",
        }
    }

    fn mask(self) -> &'static str {
        match self {
            Self::Email => "[EMAIL]",
            Self::Phone => "[PHONE]",
            Self::Card => "[CARD]",
            Self::Iban => "[IBAN]",
        }
    }
}

/// One finding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Found {
    /// What it is.
    pub kind: Kind,
    /// First character.
    pub start: usize,
    /// One past the last character.
    pub end: usize,
    /// How sure the detector is, 0 to 1.
    pub confidence: f64,
}

/// Every piece of PII in `text`, in order, none overlapping.
pub fn detect(text: &str) -> Vec<Found> {
    let chars: Vec<char> = text.chars().collect();
    let mut found: Vec<Found> = Vec::new();
    // The strictest shapes first: an IBAN holds digit runs, an email may too.
    for detector in [ibans as fn(&[char]) -> Vec<Found>, emails, numbers] {
        for candidate in detector(&chars) {
            if !found
                .iter()
                .any(|f| candidate.start < f.end && f.start < candidate.end)
            {
                found.push(candidate);
            }
        }
    }
    found.sort_by_key(|f| f.start);
    found
}

/// `text` with every finding of [`detect`] replaced by a mask such as `[CARD]`.
pub fn redact(text: &str, found: &[Found]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut next = found.iter().peekable();
    let mut skip_until = 0;
    for (i, c) in text.chars().enumerate() {
        if let Some(f) = next.peek()
            && f.start == i
        {
            out.push_str(f.kind.mask());
            skip_until = f.end;
            next.next();
        }
        if i >= skip_until {
            out.push(c);
        }
    }
    out
}

/// Whether the digits pass the Luhn check.
pub fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if !i.is_multiple_of(2) {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Whether `iban` (letters and digits only, upper-case) passes ISO 13616's mod-97 check.
pub fn iban_valid(iban: &str) -> bool {
    if !(15..=34).contains(&iban.len()) {
        return false;
    }
    let (head, tail) = iban.split_at(4);
    let mut remainder: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let value = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        let digits = if value >= 10 { 100 } else { 10 };
        remainder = (remainder * digits + value) % 97;
    }
    remainder == 1
}

fn boundary(chars: &[char], i: usize) -> bool {
    i == 0 || !chars[i - 1].is_alphanumeric()
}

fn ibans(chars: &[char]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut i = 0;
    while i + 4 <= chars.len() {
        let starts = boundary(chars, i)
            && chars[i].is_ascii_uppercase()
            && chars[i + 1].is_ascii_uppercase()
            && chars[i + 2].is_ascii_digit()
            && chars[i + 3].is_ascii_digit();
        if !starts {
            i += 1;
            continue;
        }
        // Letters and digits, in print groups separated by single spaces.
        let mut compact = String::new();
        let mut end = i;
        let mut j = i;
        while j < chars.len() && compact.len() < 34 {
            let c = chars[j];
            if c.is_ascii_alphanumeric() {
                compact.push(c.to_ascii_uppercase());
                j += 1;
                end = j;
            } else if c == ' ' && j + 1 < chars.len() && chars[j + 1].is_ascii_alphanumeric() {
                j += 1;
            } else {
                break;
            }
        }
        // The longest prefix that checks (a word may follow the last group).
        let mut matched = None;
        let mut length = compact.len();
        while length >= 15 {
            if iban_valid(&compact[..length]) {
                matched = Some(length);
                break;
            }
            length -= 1;
        }
        if let Some(length) = matched {
            let mut seen = 0;
            let mut k = i;
            while k < end && seen < length {
                if chars[k].is_ascii_alphanumeric() {
                    seen += 1;
                }
                k += 1;
            }
            found.push(Found {
                kind: Kind::Iban,
                start: i,
                end: k,
                confidence: 0.99,
            });
            i = k;
        } else {
            i += 1;
        }
    }
    found
}

fn emails(chars: &[char]) -> Vec<Found> {
    let local = |c: char| c.is_alphanumeric() || "._%+-".contains(c);
    let domain = |c: char| c.is_alphanumeric() || c == '.' || c == '-';
    let mut found = Vec::new();
    for (at, _) in chars.iter().enumerate().filter(|(_, c)| **c == '@') {
        let mut start = at;
        while start > 0 && local(chars[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < chars.len() && domain(chars[end]) {
            end += 1;
        }
        // A sentence's full stop is not part of the domain.
        while end > at + 1 && chars[end - 1] == '.' {
            end -= 1;
        }
        let host: String = chars[at + 1..end].iter().collect();
        let tld_ok = host.rsplit_once('.').is_some_and(|(name, tld)| {
            !name.is_empty() && tld.len() >= 2 && tld.chars().all(char::is_alphabetic)
        });
        if start < at && tld_ok && found.last().is_none_or(|f: &Found| f.end <= start) {
            found.push(Found {
                kind: Kind::Email,
                start,
                end,
                confidence: 0.95,
            });
        }
    }
    found
}

fn numbers(chars: &[char]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let plus = chars[i] == '+' && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        let opens = chars[i] == '(' && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if !(boundary(chars, i) && (chars[i].is_ascii_digit() || plus || opens)) {
            i += 1;
            continue;
        }
        let mut digits = Vec::new();
        let mut j = if plus { i + 1 } else { i };
        let mut end = j;
        while j < chars.len() {
            let c = chars[j];
            if let Some(d) = c.to_digit(10) {
                digits.push(d);
                j += 1;
                end = j;
            } else if " -.()".contains(c)
                && chars[j + 1..]
                    .iter()
                    .take(3)
                    .find(|n| !" -.()".contains(**n))
                    .is_some_and(char::is_ascii_digit)
            {
                j += 1;
            } else {
                break;
            }
        }
        // A number glued to letters (an order code) is not PII.
        let glued = chars.get(end).is_some_and(|c| c.is_alphanumeric());
        let kind = if glued {
            None
        } else if (13..=19).contains(&digits.len()) && luhn(&digits) {
            Some((Kind::Card, 0.95))
        } else if (if plus { 7 } else { 9 }..=15).contains(&digits.len()) {
            Some((Kind::Phone, if plus { 0.9 } else { 0.7 }))
        } else {
            None
        };
        if let Some((kind, confidence)) = kind {
            found.push(Found {
                kind,
                start: i,
                end,
                confidence,
            });
        }
        i = end.max(i + 1);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(Kind, String)> {
        let chars: Vec<char> = text.chars().collect();
        detect(text)
            .into_iter()
            .map(|f| (f.kind, chars[f.start..f.end].iter().collect()))
            .collect()
    }

    #[test]
    fn finds_each_kind_with_its_offsets() {
        let text = "Hi, call +1 (415) 555-0100 or mail ana.b@shop.example.com. \
                    Card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32 thanks";
        assert_eq!(
            kinds(text),
            vec![
                (Kind::Phone, "+1 (415) 555-0100".to_owned()),
                (Kind::Email, "ana.b@shop.example.com".to_owned()),
                (Kind::Card, "4111 1111 1111 1111".to_owned()),
                (Kind::Iban, "GB82 WEST 1234 5698 7654 32".to_owned()),
            ]
        );
    }

    #[test]
    fn a_card_failing_luhn_is_no_card() {
        assert!(luhn(&[4, 2, 4, 2, 4, 2, 4, 2, 4, 2, 4, 2, 4, 2, 4, 2]));
        assert_eq!(kinds("card 4111 1111 1111 1112"), vec![]);
        assert!(!iban_valid("GB82WEST12345698765433"));
        assert!(
            kinds("GB82 WEST 1234 5698 7654 33")
                .iter()
                .all(|(kind, _)| *kind != Kind::Iban)
        );
    }

    #[test]
    fn quantities_and_codes_are_not_pii() {
        assert_eq!(kinds("send 12 boxes of SKU-2231 by 2026-12-09"), vec![]);
        assert_eq!(kinds("order AB12345678X"), vec![]);
    }

    #[test]
    fn redaction_masks_each_finding() {
        let text = "mail me: a@b.co, card 4111111111111111.";
        assert_eq!(
            redact(text, &detect(text)),
            "mail me: [EMAIL], card [CARD]."
        );
    }
}
