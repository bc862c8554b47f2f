use super::*;

#[test]
fn every_tenant_is_in_exactly_one_shard_and_stays_there() {
    let names: Vec<String> = (0..500).map(|i| format!("tenant-{i}")).collect();
    for n in 1..=5 {
        let mut sizes = vec![0; n as usize];
        for t in &names {
            let owners: Vec<u32> = (0..n).filter(|k| in_shard(t, *k, n)).collect();
            assert_eq!(owners.len(), 1, "{t} in {owners:?} of {n}");
            sizes[owners[0] as usize] += 1;
            assert_eq!(
                owners,
                (0..n).filter(|k| in_shard(t, *k, n)).collect::<Vec<_>>()
            );
        }
        // Roughly even: no shard gets less than half its share.
        assert!(
            sizes.iter().all(|s| *s * 2 * n as usize >= names.len()),
            "{sizes:?}"
        );
    }
    assert!(in_shard("alpha", 0, 2) != in_shard("alpha", 1, 2));
}

#[test]
fn shard_specs() {
    assert_eq!(parse_shard("0/3"), Ok((0, 3)));
    assert!(parse_shard("3/3").is_err());
    assert!(parse_shard("1").is_err());
    assert!(parse_shard("a/2").is_err());
}
