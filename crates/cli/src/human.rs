//! How amounts and times read in human output: BTC with thousands separators and UTC dates.
//! `--json` keeps the exact integers (satoshis, Unix seconds); these are for people only.

/// `1507.7654321` BTC as "1,507.76543210 BTC": always eight decimals, so satoshis stay exact.
pub fn btc(sats: u64) -> String {
    format!(
        "{}.{:08} BTC",
        thousands(sats / 100_000_000),
        sats % 100_000_000
    )
}

/// 1234567 as "1,234,567".
pub fn thousands(n: u64) -> String {
    let d = n.to_string();
    let mut out = String::with_capacity(d.len() + d.len() / 3);
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Unix seconds as "2024-05-01 13:04:05 UTC".
pub fn utc(secs: u64) -> String {
    let s = secs % 86_400;
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        utc_date(secs),
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// Unix seconds as the UTC date "2024-05-01".
pub fn utc_date(secs: u64) -> String {
    cointrail_tags::prices::date_of(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_dates_read_as_people_write_them() {
        assert_eq!(btc(0), "0.00000000 BTC");
        assert_eq!(btc(150_776_543_210), "1,507.76543210 BTC");
        assert_eq!(thousands(913_753_701_335), "913,753,701,335");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        // The genesis block's time.
        assert_eq!(utc(1_231_006_505), "2009-01-03 18:15:05 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
    }
}
