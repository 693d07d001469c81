//! Message IDs and tokens (RFC 7252 §4.4, §5.3.1): a sequence per peer,
//! seeded and reproducible.

use super::*;

#[test]
fn message_ids_are_a_sequence_per_peer() {
    let mut ex: Exchanges<Addr> = Exchanges::new(TransmissionParams::default(), 3);
    let a0 = ex.next_message_id(&CLIENT);
    let b0 = ex.next_message_id(&OTHER_CLIENT);
    let a1 = ex.next_message_id(&CLIENT);
    let b1 = ex.next_message_id(&OTHER_CLIENT);
    assert_eq!(a1, a0.wrapping_add(1));
    assert_eq!(b1, b0.wrapping_add(1));
}

#[test]
fn initial_message_ids_depend_on_the_seed() {
    let first =
        |seed| Exchanges::<Addr>::new(TransmissionParams::default(), seed).next_message_id(&CLIENT);
    assert_eq!(first(5), first(5));
    let distinct: std::collections::HashSet<u16> = (0..20).map(first).collect();
    assert!(distinct.len() > 10, "initial IDs should be random per seed");
}

#[test]
fn tokens_are_8_random_bytes_reproducible_from_the_seed() {
    let mut a: Exchanges<Addr> = Exchanges::new(TransmissionParams::default(), 9);
    let mut b: Exchanges<Addr> = Exchanges::new(TransmissionParams::default(), 9);
    let ta: Vec<Vec<u8>> = (0..100).map(|_| a.new_token(&CLIENT)).collect();
    let tb: Vec<Vec<u8>> = (0..100).map(|_| b.new_token(&CLIENT)).collect();
    assert_eq!(ta, tb);
    assert!(ta.iter().all(|t| t.len() == 8));
    let distinct: std::collections::HashSet<&Vec<u8>> = ta.iter().collect();
    assert_eq!(distinct.len(), 100);
}
