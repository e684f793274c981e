//! Pure rules of anti-cheat: the built-in arithmetic captcha, how the gate treats each action,
//! and which address a request comes from when it passed through reverse proxies.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::config::RatePolicy;

/// A device-keyed soft limit also counts per member, with this many times the device's count:
/// the device id is the client's choice, so rotating it must not reset the limit, while a
/// member with a phone and a tablet keeps room for both.
pub const MEMBER_ALLOWANCE_PER_DEVICE: u64 = 2;

/// The member allowance that goes with a device-keyed policy: same window, twice the count.
pub fn member_allowance(device: RatePolicy) -> RatePolicy {
    RatePolicy {
        count: device.count.saturating_mul(MEMBER_ALLOWANCE_PER_DEVICE),
        window: device.window,
    }
}

/// A challenge as stored between `CAPTCHA_REQUIRED` and `solveCaptcha`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub member_id: i64,
    pub action: String,
    pub answer: String,
    pub attempts_left: u32,
}

pub const CAPTCHA_ATTEMPTS: u32 = 3;

/// `What is 7 + 5?` for two numbers from 1 to 9; the answer is kept server-side.
pub fn arithmetic(a: u32, b: u32) -> (String, String) {
    (format!("What is {a} + {b}?"), (a + b).to_string())
}

/// Answers are compared as typed, without surrounding spaces.
pub fn answer_matches(expected: &str, given: &str) -> bool {
    expected == given.trim()
}

/// The challenge after a wrong answer, or `None` once its attempts are used up.
pub fn after_wrong_answer(mut challenge: Challenge) -> Option<Challenge> {
    challenge.attempts_left = challenge.attempts_left.saturating_sub(1);
    (challenge.attempts_left > 0).then_some(challenge)
}

/// One hop of a forwarding chain, as a proxy wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    Address(IpAddr),
    /// `unknown`, an obfuscated name (`_hidden`), or anything else that is no address.
    Unknown,
}

/// The address of one node: `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:443` (RFC 7239 also allows an obfuscated port, `:_a1`). IPv4-mapped IPv6
/// counts as the IPv4 address.
pub fn parse_node(node: &str) -> Hop {
    node_address(node.trim()).map_or(Hop::Unknown, |a| Hop::Address(a.to_canonical()))
}

fn node_address(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        if !after.is_empty() && !after.strip_prefix(':').is_some_and(is_port) {
            return None;
        }
        return v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(address) = node.parse::<IpAddr>() {
        return Some(address);
    }
    let (v4, port) = node.rsplit_once(':')?;
    if !is_port(port) {
        return None;
    }
    v4.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

fn is_port(port: &str) -> bool {
    match port.strip_prefix('_') {
        Some(obfuscated) => {
            !obfuscated.is_empty()
                && obfuscated
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        }
        None => !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// The hops of `X-Forwarded-For` lines, in order (client first); `None` when there are none.
pub fn x_forwarded_for_hops(lines: &[&str]) -> Option<Vec<Hop>> {
    let hops: Vec<Hop> = lines
        .iter()
        .filter(|line| !line.trim().is_empty())
        .flat_map(|line| line.split(','))
        .map(parse_node)
        .collect();
    (!hops.is_empty()).then_some(hops)
}

/// The `for=` hops of RFC 7239 `Forwarded` lines, in order; an element without `for=` is an
/// unknown hop. `None` when there are no elements.
pub fn forwarded_hops(lines: &[&str]) -> Option<Vec<Hop>> {
    let hops: Vec<Hop> = lines
        .iter()
        .filter(|line| !line.trim().is_empty())
        .flat_map(|line| split_unquoted(line, b','))
        .map(|element| {
            split_unquoted(element, b';')
                .into_iter()
                .filter_map(|pair| pair.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                .map_or(Hop::Unknown, |(_, value)| {
                    parse_node(&unquote(value.trim()))
                })
        })
        .collect();
    (!hops.is_empty()).then_some(hops)
}

/// Splits on `separator` (ASCII) outside double-quoted strings, which may hold `\"`. Scanned
/// from the right: a proxy appends its element at the end, so an unbalanced quote that a client
/// put in front cannot swallow it.
fn split_unquoted(s: &str, separator: u8) -> Vec<&str> {
    let bytes = s.as_bytes();
    let (mut parts, mut end, mut quoted) = (Vec::new(), s.len(), false);
    for i in (0..bytes.len()).rev() {
        match bytes[i] {
            b'"' if !(quoted && i > 0 && bytes[i - 1] == b'\\') => quoted = !quoted,
            // An ASCII byte never sits inside a multi-byte character, so `i` is a boundary.
            b if b == separator && !quoted => {
                parts.push(&s[i + 1..end]);
                end = i;
            }
            _ => {}
        }
    }
    parts.push(&s[..end]);
    parts.reverse();
    parts
}

/// A token as is; a quoted string without its quotes and escapes.
fn unquote(value: &str) -> String {
    match value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
    {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' {
                    chars.next().unwrap_or(c)
                } else {
                    c
                });
            }
            out
        }
        None => value.to_string(),
    }
}

fn is_trusted(address: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&address))
}

/// Walks a chain from the proxy end: trusted hops are skipped, and the first untrusted address
/// is the client. A hop that is no address stops the walk at the last address a trusted proxy
/// vouched for; if every hop is trusted, the client is the first of them.
fn rightmost_untrusted(peer: IpAddr, hops: &[Hop], trusted: &[IpNet]) -> IpAddr {
    let mut vouched = peer;
    for hop in hops.iter().rev() {
        match *hop {
            Hop::Address(address) => {
                vouched = address;
                if !is_trusted(address, trusted) {
                    break;
                }
            }
            Hop::Unknown => break,
        }
    }
    vouched
}

/// The address a request comes from (DESIGN s6). The TCP peer, unless it is a trusted proxy:
/// then the rightmost untrusted hop of `X-Forwarded-For` / `Forwarded`. A proxy appends to one
/// of them and passes on what the client sent in the other, so when a request carries both
/// and they name different clients, one was written by the client: neither is believed, and
/// the address is the proxy's.
pub fn client_address(
    peer: IpAddr,
    trusted: &[IpNet],
    x_forwarded_for: &[&str],
    forwarded: &[&str],
) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let from = |hops: Option<Vec<Hop>>| hops.map(|h| rightmost_untrusted(peer, &h, trusted));
    match (
        from(x_forwarded_for_hops(x_forwarded_for)),
        from(forwarded_hops(forwarded)),
    ) {
        (None, None) => peer,
        (Some(client), None) | (None, Some(client)) => client,
        (Some(a), Some(b)) if a == b => a,
        (Some(_), Some(_)) => peer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_may_do_twice_what_one_device_may_in_the_same_window() {
        let device = RatePolicy {
            count: 5,
            window: chrono::Duration::seconds(60),
        };
        assert_eq!(
            member_allowance(device),
            RatePolicy {
                count: 10,
                window: device.window
            }
        );
        let huge = RatePolicy {
            count: u64::MAX,
            ..device
        };
        assert_eq!(member_allowance(huge).count, u64::MAX);
    }

    #[test]
    fn the_arithmetic_prompt_has_its_sum_as_answer() {
        assert_eq!(arithmetic(7, 5), ("What is 7 + 5?".into(), "12".into()));
        assert!(answer_matches("12", " 12 "));
        assert!(!answer_matches("12", "13"));
        assert!(!answer_matches("12", "twelve"));
    }

    #[test]
    fn a_challenge_survives_two_wrong_answers_not_three() {
        let c = Challenge {
            member_id: 1,
            action: "transfer".into(),
            answer: "3".into(),
            attempts_left: CAPTCHA_ATTEMPTS,
        };
        let c = after_wrong_answer(c).unwrap();
        let c = after_wrong_answer(c).unwrap();
        assert_eq!(c.attempts_left, 1);
        assert!(after_wrong_answer(c).is_none());
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &str) -> Vec<IpNet> {
        crate::config::parse_networks(list).unwrap()
    }

    #[test]
    fn nodes_parse_with_ports_brackets_and_mapped_addresses() {
        let a = |s: &str| Hop::Address(ip(s));
        assert_eq!(parse_node(" 192.0.2.1 "), a("192.0.2.1"));
        assert_eq!(parse_node("192.0.2.1:8080"), a("192.0.2.1"));
        assert_eq!(parse_node("2001:db8::1"), a("2001:db8::1"));
        assert_eq!(parse_node("[2001:db8::1]"), a("2001:db8::1"));
        assert_eq!(parse_node("[2001:db8::1]:443"), a("2001:db8::1"));
        assert_eq!(parse_node("[2001:db8::1]:_p0rt"), a("2001:db8::1"));
        assert_eq!(parse_node("::ffff:192.0.2.1"), a("192.0.2.1"));
        for junk in [
            "unknown",
            "_hidden",
            "",
            "192.0.2.1:",
            "192.0.2.1:http",
            "[2001:db8::1",
            "[2001:db8::1]443",
            "[192.0.2.1]",
            "example.com:80",
            "2001:db8::1:99999x",
        ] {
            assert_eq!(parse_node(junk), Hop::Unknown, "{junk}");
        }
    }

    #[test]
    fn forwarded_reads_the_for_of_each_element_quoted_or_not() {
        let hops = forwarded_hops(&[
            r#"for=192.0.2.43;proto=https, For="[2001:db8:cafe::17]:4711""#,
            r#"proto=http;by=203.0.113.43, for="_gazonk", for=unknown"#,
            r#"by="a,b;c";for=198.51.100.17"#,
        ])
        .unwrap();
        assert_eq!(
            hops,
            [
                Hop::Address(ip("192.0.2.43")),
                Hop::Address(ip("2001:db8:cafe::17")),
                Hop::Unknown,
                Hop::Unknown,
                Hop::Unknown,
                Hop::Address(ip("198.51.100.17")),
            ]
        );
        assert_eq!(forwarded_hops(&[]), None);
        assert_eq!(forwarded_hops(&["  "]), None);
        assert_eq!(unquote(r#""a\"b""#), r#"a"b"#);
    }

    #[test]
    fn x_forwarded_for_lines_join_in_order() {
        assert_eq!(
            x_forwarded_for_hops(&["203.0.113.7, 10.0.0.2", "10.0.0.3:81"]).unwrap(),
            [
                Hop::Address(ip("203.0.113.7")),
                Hop::Address(ip("10.0.0.2")),
                Hop::Address(ip("10.0.0.3")),
            ]
        );
        assert_eq!(x_forwarded_for_hops(&[""]), None);
        assert_eq!(
            x_forwarded_for_hops(&["a, ,1.2.3.4"]).unwrap()[..2],
            [Hop::Unknown, Hop::Unknown]
        );
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        let proxy = ip("10.0.0.2");
        let xff = ["203.0.113.7"];
        assert_eq!(client_address(proxy, &[], &xff, &[]), proxy);
        assert_eq!(
            client_address(proxy, &nets("192.168.0.0/16"), &xff, &[]),
            proxy
        );
        assert_eq!(
            client_address(proxy, &nets("10.0.0.0/8"), &xff, &[]),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_address(proxy, &nets("10.0.0.0/8"), &[], &[]),
            proxy,
            "a trusted proxy that names nobody"
        );
        let mapped = ip("::ffff:10.0.0.2");
        assert_eq!(
            client_address(mapped, &nets("10.0.0.0/8"), &xff, &[]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn the_client_is_the_rightmost_hop_no_trusted_proxy_wrote_for_itself() {
        let trusted = nets("10.0.0.0/8, fd00::/8");
        let peer = ip("10.0.0.9");
        let from = |xff: &str| client_address(peer, &trusted, &[xff], &[]);
        assert_eq!(
            from("198.51.100.1, 203.0.113.7, 10.1.1.1"),
            ip("203.0.113.7")
        );
        assert_eq!(from("203.0.113.7, fd00::5"), ip("203.0.113.7"));
        // All trusted: the first of them started it.
        assert_eq!(from("10.3.3.3, 10.1.1.1"), ip("10.3.3.3"));
        // A hop that is no address stops at what a trusted proxy vouched for.
        assert_eq!(from("203.0.113.7, unknown, 10.1.1.1"), ip("10.1.1.1"));
        assert_eq!(from("203.0.113.7, garbage"), peer);
    }

    #[test]
    fn two_headers_that_disagree_are_both_ignored() {
        let trusted = nets("10.0.0.0/8");
        let peer = ip("10.0.0.9");
        let xff = ["203.0.113.7"];
        assert_eq!(
            client_address(peer, &trusted, &xff, &["for=203.0.113.7"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_address(peer, &trusted, &xff, &["for=198.51.100.1"]),
            peer
        );
        assert_eq!(
            client_address(peer, &trusted, &[], &["for=\"[2001:db8::7]:4711\""]),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn a_quote_a_client_leaves_open_does_not_swallow_what_its_proxy_appends() {
        let trusted = nets("10.0.0.0/8");
        let line = r#"for="198.51.100.1, for=203.0.113.7"#;
        assert_eq!(
            client_address(ip("10.0.0.1"), &trusted, &[], &[line]),
            ip("203.0.113.7")
        );
    }

    fn any_address() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|n| IpAddr::V4(Ipv4Addr::from(n))),
            any::<u128>().prop_map(|n| IpAddr::V6(Ipv6Addr::from(n))),
        ]
    }

    /// What a client may put in a header: addresses, junk, separators, quotes.
    fn client_text() -> impl Strategy<Value = String> {
        prop_oneof![any_address().prop_map(|a| a.to_string()), "[ -~]{0,40}",]
    }

    /// A node as proxies write it: bare, with a port, IPv6 in brackets.
    fn written(address: IpAddr, port: Option<u16>, forwarded: bool) -> String {
        let node = match (address, port) {
            (IpAddr::V4(a), None) => a.to_string(),
            (IpAddr::V4(a), Some(p)) => format!("{a}:{p}"),
            (IpAddr::V6(a), None) if !forwarded => a.to_string(),
            (IpAddr::V6(a), None) => format!("[{a}]"),
            (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        };
        if forwarded {
            format!("for=\"{node}\"")
        } else {
            node
        }
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_written_node_reads_back_as_its_address(
            address in any_address(),
            port in proptest::option::of(any::<u16>()),
            forwarded in any::<bool>(),
        ) {
            let line = written(address, port, forwarded);
            let hops = if forwarded {
                forwarded_hops(&[&line])
            } else {
                x_forwarded_for_hops(&[&line])
            };
            prop_assert_eq!(hops, Some(vec![Hop::Address(address.to_canonical())]));
        }

        #[test]
        fn from_an_untrusted_peer_no_header_matters(
            peer in any_address(),
            xff in proptest::collection::vec(client_text(), 0..4),
            fwd in proptest::collection::vec(client_text(), 0..4),
        ) {
            let trusted = nets("10.0.0.0/8, fd00::/8");
            prop_assume!(!is_trusted(peer.to_canonical(), &trusted));
            let xff: Vec<&str> = xff.iter().map(String::as_str).collect();
            let fwd: Vec<&str> = fwd.iter().map(String::as_str).collect();
            prop_assert_eq!(client_address(peer, &trusted, &xff, &fwd), peer.to_canonical());
        }

        /// The property that matters: whatever a client writes itself sits left of the hop its
        /// proxy appends, so it cannot choose the address it is counted by.
        #[test]
        fn a_client_cannot_choose_its_address_behind_trusted_proxies(
            forged in proptest::collection::vec(client_text(), 0..5),
            client in any_address(),
            port in proptest::option::of(any::<u16>()),
            inner_proxies in proptest::collection::vec(0u32..1 << 24, 0..3),
            forwarded in any::<bool>(),
        ) {
            let trusted = nets("10.0.0.0/8");
            let client = client.to_canonical();
            prop_assume!(!is_trusted(client, &trusted));
            let mut line = forged.join(", ");
            let mut append = |node: String| {
                if !line.is_empty() {
                    line.push_str(", ");
                }
                line.push_str(&node);
            };
            append(written(client, port, forwarded));
            for p in inner_proxies {
                append(written(IpAddr::V4(Ipv4Addr::from((10 << 24) | p)), None, forwarded));
            }
            let peer = ip("10.0.0.1");
            let found = if forwarded {
                client_address(peer, &trusted, &[], &[&line])
            } else {
                client_address(peer, &trusted, &[&line], &[])
            };
            prop_assert_eq!(found, client);
        }
    }
}
