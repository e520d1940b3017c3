fn main() {
    let d = std::path::PathBuf::from(std::env::args().nth(1).unwrap());
    let idx = cointrail_index::Index::open_reader(&d.join("index")).unwrap();
    let c = cointrail_clustering::Clustering::open(
        &d.join("clusters"),
        cointrail_clustering::NetParams::any_height(),
    )
    .unwrap();
    let mut best = (0, 0);
    for a in 0..c.addr_count() as u32 {
        let s = c.size_of(a);
        if s > best.0 {
            best = (s, a);
        }
    }
    println!("{} {}", best.0, idx.render_addr(best.1));
}
