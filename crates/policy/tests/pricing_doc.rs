//! `docs/pricing.md` lists exactly the built-in price table, with the same numbers.

use warden_policy::{BUILTIN_PRICES_AS_OF, PriceTable, usd_to_micros};

#[test]
fn the_documented_table_is_the_built_in_table() {
    let doc = include_str!("../../../docs/pricing.md");
    assert!(
        doc.contains(&format!("**{BUILTIN_PRICES_AS_OF}**")),
        "docs/pricing.md must state the table's date"
    );
    let usd = |cell: &str| usd_to_micros(cell.trim().trim_start_matches('$').parse().unwrap());
    let mut documented = Vec::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // `| provider | `model` | $in | $out | $cached |` → ["", provider, model, in, out, cached, ""]
        if cells.len() == 7 && cells[2].starts_with('`') && cells[3].starts_with('$') {
            documented.push((
                cells[1].to_string(),
                cells[2].trim_matches('`').to_string(),
                usd(cells[3]).unwrap(),
                usd(cells[4]).unwrap(),
                usd(cells[5]).unwrap(),
            ));
        }
    }
    let mut built_in: Vec<_> = PriceTable::builtin()
        .entries()
        .map(|(p, m, price)| {
            (
                p.to_string(),
                m.to_string(),
                price.input_micros_per_mtok,
                price.output_micros_per_mtok,
                price.cached_input_micros_per_mtok,
            )
        })
        .collect();
    documented.sort();
    built_in.sort();
    assert_eq!(documented, built_in);
}
