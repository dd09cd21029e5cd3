use super::*;

fn h(s: &str) -> Hash {
    Hash::from_hex(s).expect("test vector hex")
}

fn hex_bytes(s: &str) -> Vec<u8> {
    crate::hex::decode(s).expect("test vector hex")
}

// The classic RFC 6962 test tree, as used by Certificate Transparency and Go's
// transparency-dev/merkle (proof/verify_test.go): eight leaves and the roots of every prefix.
const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, proof) — Go's vectors use 1-based leaf numbers; these are 0-based.
fn inclusion_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (
            0,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            5,
            8,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            3,
            vec![h(
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            )],
        ),
        (
            1,
            5,
            vec![
                h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
    ]
}

/// (old size, new size, proof), from the same source.
fn consistency_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (1, 1, vec![]),
        (
            1,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            6,
            8,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            5,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (
            6,
            7,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
    ]
}

fn vector_tree() -> (MemoryTree, Vec<Hash>) {
    let mut tree = MemoryTree::new();
    let leaves = LEAVES
        .iter()
        .map(|l| tree.push_entry(&hex_bytes(l)))
        .collect();
    (tree, leaves)
}

#[test]
fn empty_root_is_sha256_of_nothing() {
    assert_eq!(
        empty_root(),
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(root(&[]), empty_root());
    assert_eq!(MemoryTree::new().root(), empty_root());
}

#[test]
fn roots_match_rfc6962_vectors() {
    let (tree, leaves) = vector_tree();
    for (i, want) in ROOTS.iter().enumerate() {
        let size = i as u64 + 1;
        assert_eq!(root(&leaves[..=i]), h(want), "naive root of {size}");
        assert_eq!(
            tree.root_at(size).unwrap(),
            h(want),
            "stored root of {size}"
        );
    }
    assert_eq!(tree.root(), h(ROOTS[7]));
}

#[test]
fn inclusion_proofs_match_vectors() {
    let (tree, leaves) = vector_tree();
    for (index, size, want) in inclusion_vectors() {
        let got = tree.inclusion_proof(size, index).unwrap();
        assert_eq!(got, want, "proof for {index} in {size}");
        let root = h(ROOTS[size as usize - 1]);
        verify_inclusion(index, size, &leaves[index as usize], &got, &root).unwrap();
    }
}

#[test]
fn consistency_proofs_match_vectors() {
    let (tree, _) = vector_tree();
    for (old, new, want) in consistency_vectors() {
        let got = tree.consistency_proof(old, new).unwrap();
        assert_eq!(got, want, "proof {old} -> {new}");
        let (r1, r2) = (h(ROOTS[old as usize - 1]), h(ROOTS[new as usize - 1]));
        verify_consistency(old, new, &r1, &r2, &got).unwrap();
    }
}

#[test]
fn corrupted_inclusion_proofs_fail() {
    let (_, leaves) = vector_tree();
    let some = h("abacaba000000000000000000000000000000000000000000060061e00123456");
    for (index, size, proof) in inclusion_vectors() {
        let root = h(ROOTS[size as usize - 1]);
        let leaf = leaves[index as usize];
        let wrong = |i: u64, s: u64, l: Hash, p: &[Hash], r: Hash| {
            assert!(
                verify_inclusion(i, s, &l, p, &r).is_err(),
                "accepted corrupt proof {i}/{s}"
            );
        };
        wrong(index + 1, size, leaf, &proof, root);
        if index > 0 {
            wrong(index - 1, size, leaf, &proof, root);
        }
        wrong(index ^ 2, size, leaf, &proof, root);
        wrong(index, size * 2, leaf, &proof, root);
        wrong(index, size / 2, leaf, &proof, root);
        wrong(index, size, some, &proof, root);
        wrong(index, size, leaf, &proof, empty_root());
        let mut longer = proof.clone();
        longer.push(root);
        wrong(index, size, leaf, &longer, root);
        let mut prefixed = vec![root];
        prefixed.extend_from_slice(&proof);
        wrong(index, size, leaf, &prefixed, root);
        for i in 0..proof.len() {
            let mut p = proof.clone();
            p[i].0[0] ^= 8;
            wrong(index, size, leaf, &p, root);
        }
        if !proof.is_empty() {
            wrong(index, size, leaf, &proof[..proof.len() - 1], root);
        }
    }
}

#[test]
fn corrupted_consistency_proofs_fail() {
    for (old, new, proof) in consistency_vectors() {
        if proof.is_empty() {
            continue;
        }
        let (r1, r2) = (h(ROOTS[old as usize - 1]), h(ROOTS[new as usize - 1]));
        let wrong = |o: u64, n: u64, a: Hash, b: Hash, p: &[Hash]| {
            assert!(
                verify_consistency(o, n, &a, &b, p).is_err(),
                "accepted corrupt consistency {o}->{n}"
            );
        };
        wrong(old - 1, new, r1, r2, &proof);
        wrong(old + 1, new, r1, r2, &proof);
        wrong(old ^ 2, new, r1, r2, &proof);
        wrong(old, new * 2, r1, r2, &proof);
        wrong(old, new / 2, r1, r2, &proof);
        wrong(old, new, r2, r1, &proof);
        wrong(old, new, empty_root(), r2, &proof);
        wrong(old, new, r1, empty_root(), &proof);
        wrong(old, new, r1, r2, &[]);
        let mut longer = proof.clone();
        longer.push(r1);
        wrong(old, new, r1, r2, &longer);
        let mut prefixed = vec![proof[0]];
        prefixed.extend_from_slice(&proof);
        wrong(old, new, r1, r2, &prefixed);
        wrong(old, new, r1, r2, &proof[..proof.len() - 1]);
        for i in 0..proof.len() {
            let mut p = proof.clone();
            p[i].0[0] ^= 16;
            wrong(old, new, r1, r2, &p);
        }
    }
}

#[test]
fn consistency_edge_cases() {
    let (r1, r2) = (h(ROOTS[0]), h(ROOTS[1]));
    // The empty tree is a prefix of every tree, with an empty proof only.
    verify_consistency(0, 0, &r1, &r1, &[]).unwrap();
    verify_consistency(0, 1, &r1, &r2, &[]).unwrap();
    assert!(verify_consistency(0, 1, &r1, &r2, &[r1]).is_err());
    // Equal sizes need equal roots.
    verify_consistency(1, 1, &r2, &r2, &[]).unwrap();
    assert!(verify_consistency(1, 1, &r1, &r2, &[]).is_err());
    assert!(verify_consistency(1, 1, &r1, &r1, &[r1]).is_err());
    // No time travel.
    assert!(matches!(
        verify_consistency(2, 1, &r1, &r2, &[]),
        Err(ProofError::SizeOrder { .. })
    ));
    // A non-trivial extension needs a proof.
    assert!(verify_consistency(1, 2, &r1, &r2, &[]).is_err());
}

#[test]
fn inclusion_edge_cases() {
    let leaf = leaf_hash(b"data");
    verify_inclusion(0, 1, &leaf, &[], &leaf).unwrap();
    assert!(verify_inclusion(0, 0, &leaf, &[], &leaf).is_err());
    assert!(verify_inclusion(1, 1, &leaf, &[], &leaf).is_err());
    assert!(verify_inclusion(0, 1, &leaf, &[], &empty_root()).is_err());
}

/// RFC 6962 §2.1.1 PATH(m, D[n]), straight from the definition.
fn naive_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return vec![];
    }
    let k = largest_power_of_two_below(n as u64) as usize;
    if m < k {
        let mut p = naive_path(m, &leaves[..k]);
        p.push(root(&leaves[k..]));
        p
    } else {
        let mut p = naive_path(m - k, &leaves[k..]);
        p.push(root(&leaves[..k]));
        p
    }
}

/// RFC 6962 §2.1.2 SUBPROOF(m, D[n], b), straight from the definition.
fn naive_subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if complete { vec![] } else { vec![root(leaves)] };
    }
    let k = largest_power_of_two_below(n as u64) as usize;
    if m <= k {
        let mut p = naive_subproof(m, &leaves[..k], complete);
        p.push(root(&leaves[k..]));
        p
    } else {
        let mut p = naive_subproof(m - k, &leaves[k..], false);
        p.push(root(&leaves[..k]));
        p
    }
}

#[test]
fn all_proofs_match_the_rfc_definitions_up_to_80_leaves() {
    const N: usize = 80;
    let mut tree = MemoryTree::new();
    let leaves: Vec<Hash> = (0..N)
        .map(|i| tree.push_entry(format!("entry {i}").as_bytes()))
        .collect();
    for n in 1..=N {
        let size = n as u64;
        let r = root(&leaves[..n]);
        assert_eq!(tree.root_at(size).unwrap(), r, "root {n}");
        for m in 0..n {
            let got = tree.inclusion_proof(size, m as u64).unwrap();
            assert_eq!(got, naive_path(m, &leaves[..n]), "path {m} in {n}");
            verify_inclusion(m as u64, size, &leaves[m], &got, &r).unwrap();
            assert_eq!(
                root_from_inclusion(m as u64, size, &leaves[m], &got).unwrap(),
                r
            );
        }
        for m in 1..=n {
            let got = tree.consistency_proof(m as u64, size).unwrap();
            assert_eq!(
                got,
                naive_subproof(m, &leaves[..n], true),
                "consistency {m} -> {n}"
            );
            let old = root(&leaves[..m]);
            verify_consistency(m as u64, size, &old, &r, &got).unwrap();
            if m < n {
                assert!(verify_consistency(m as u64, size, &r, &old, &got).is_err());
            }
        }
    }
}

#[test]
fn proofs_agree_with_ct_merkle() {
    use ct_merkle::mem_backed_tree::MemoryBackedTree;
    let mut theirs: MemoryBackedTree<sha2::Sha256, Vec<u8>> = MemoryBackedTree::new();
    let mut ours = MemoryTree::new();
    for i in 0..70u32 {
        let entry = format!("{{\"index\":{i}}}").into_bytes();
        ours.push_entry(&entry);
        theirs.push(entry);
        let size = ours.size();
        assert_eq!(ours.root().as_bytes()[..], theirs.root().as_bytes()[..]);
        for m in 0..size {
            let a: Vec<u8> = ours
                .inclusion_proof(size, m)
                .unwrap()
                .iter()
                .flat_map(|h| h.0)
                .collect();
            assert_eq!(
                a,
                theirs.prove_inclusion(m as usize).as_bytes(),
                "{m}/{size}"
            );
        }
        for old in 1..size {
            let a: Vec<u8> = ours
                .consistency_proof(old, size)
                .unwrap()
                .iter()
                .flat_map(|h| h.0)
                .collect();
            let b = theirs.prove_consistency((size - old) as usize);
            assert_eq!(a, b.as_bytes(), "{old}->{size}");
        }
    }
}

#[test]
fn stored_hash_layout_matches_go_tlog() {
    // Leaf 0, leaf 1, node(1,0), leaf 2, leaf 3, node(1,1), node(2,0), leaf 4 ...
    assert_eq!(stored_hash_index(0, 0), 0);
    assert_eq!(stored_hash_index(0, 1), 1);
    assert_eq!(stored_hash_index(1, 0), 2);
    assert_eq!(stored_hash_index(0, 2), 3);
    assert_eq!(stored_hash_index(0, 3), 4);
    assert_eq!(stored_hash_index(1, 1), 5);
    assert_eq!(stored_hash_index(2, 0), 6);
    assert_eq!(stored_hash_index(0, 4), 7);
    let mut tree = MemoryTree::new();
    for n in 0..1000u64 {
        assert_eq!(stored_hash_count(n), tree.stored.len() as u64);
        assert_eq!(stored_hash_count(n), 2 * n - u64::from(n.count_ones()));
        tree.push_entry(&n.to_le_bytes());
    }
}

#[test]
fn hash_text_forms_round_trip() {
    let x = leaf_hash(b"x");
    assert_eq!(Hash::from_hex(&x.to_hex()), Some(x));
    assert_eq!(Hash::from_hex(&x.to_hex().to_uppercase()), Some(x));
    assert_eq!(Hash::from_base64(&x.to_base64()), Some(x));
    assert_eq!(Hash::from_hex("00"), None);
    assert_eq!(Hash::from_base64("AAAA"), None);
}
