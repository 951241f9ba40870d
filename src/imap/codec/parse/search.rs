//! `* SEARCH` (with CONDSTORE's `(MODSEQ n)`) and `* ESEARCH` (RFC 4731).

use crate::imap::codec::{Data, ESearchResult, SearchResult};

use super::{
    PResult, atom, end, fail, keyword, lossy, number, number64, run, skip_spaces, skip_value, sp, string,
    uid_set,
};

pub(crate) fn search(i: &[u8]) -> Result<Data, &[u8]> {
    run(search_data(i)).map(Data::Search)
}

fn search_data(mut i: &[u8]) -> PResult<'_, SearchResult> {
    let mut result = SearchResult::default();
    loop {
        let rest = skip_spaces(i);
        if rest.is_empty() {
            return Ok((rest, result));
        }
        if rest.len() == i.len() {
            return fail(i);
        }
        if let Some(list) = rest.strip_prefix(b"(") {
            let (list, ()) = keyword(skip_spaces(list), "MODSEQ")?;
            let (list, ()) = sp(list)?;
            let (list, modseq) = number64(list)?;
            let Some(list) = skip_spaces(list).strip_prefix(b")") else {
                return fail(list);
            };
            result.modseq = Some(modseq);
            let (rest, ()) = end(list)?;
            return Ok((rest, result));
        }
        let (rest, n) = number(rest)?;
        result.ids.push(n);
        i = rest;
    }
}

pub(crate) fn esearch(i: &[u8]) -> Result<Data, &[u8]> {
    run(esearch_data(i)).map(Data::ESearch)
}

fn esearch_data(i: &[u8]) -> PResult<'_, ESearchResult> {
    let mut result = ESearchResult::default();
    let mut i = skip_spaces(i);
    if let Some(rest) = i.strip_prefix(b"(") {
        let (rest, ()) = keyword(skip_spaces(rest), "TAG")?;
        let (rest, ()) = sp(rest)?;
        let (rest, tag) = string(rest)?;
        let Some(rest) = skip_spaces(rest).strip_prefix(b")") else {
            return fail(rest);
        };
        result.tag = Some(lossy(&tag));
        i = skip_spaces(rest);
    }
    if let Ok((rest, ())) = keyword(i, "UID") {
        result.uid = true;
        i = skip_spaces(rest);
    }
    while !i.is_empty() {
        let (rest, name) = atom(i)?;
        let (rest, ()) = sp(rest)?;
        let rest = match name.to_ascii_uppercase().as_slice() {
            b"MIN" => number(rest).map(|(r, n)| (r, result.min = Some(n)))?.0,
            b"MAX" => number(rest).map(|(r, n)| (r, result.max = Some(n)))?.0,
            b"COUNT" => number(rest).map(|(r, n)| (r, result.count = Some(n)))?.0,
            b"MODSEQ" => number64(rest).map(|(r, n)| (r, result.modseq = Some(n)))?.0,
            b"ALL" => {
                let (r, set) = uid_set(rest)?;
                result.all = Some(set);
                r
            }
            _ => skip_value(rest)?.0,
        };
        let after = skip_spaces(rest);
        if !after.is_empty() && after.len() == rest.len() {
            return fail(rest);
        }
        i = after;
    }
    Ok((i, result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_lists_numbers_with_any_spacing() {
        assert_eq!(
            search(b" 2 84  882 "),
            Ok(Data::Search(SearchResult {
                ids: vec![2, 84, 882],
                modseq: None
            }))
        );
        assert_eq!(search(b""), Ok(Data::Search(SearchResult::default())));
        assert_eq!(
            search(b" 2 5 (MODSEQ 917162500)"),
            Ok(Data::Search(SearchResult {
                ids: vec![2, 5],
                modseq: Some(917_162_500)
            }))
        );
        assert!(search(b" 2 x").is_err());
        assert!(search(b" 4294967296").is_err());
        assert!(search(b"2").is_err());
    }

    #[test]
    fn esearch_items() {
        let Ok(Data::ESearch(r)) =
            esearch(br#" (TAG "A282") UID MIN 2 max 20 COUNT 3 ALL 2,10:11 MODSEQ 12345"#)
        else {
            panic!()
        };
        assert_eq!(r.tag.as_deref(), Some("A282"));
        assert!(r.uid);
        assert_eq!(
            (r.min, r.max, r.count, r.modseq),
            (Some(2), Some(20), Some(3), Some(12345))
        );
        assert_eq!(r.all.map(|s| s.to_string()).as_deref(), Some("2,10:11"));
        let Ok(Data::ESearch(empty)) = esearch(br#" (TAG "A1") UID"#) else {
            panic!()
        };
        assert_eq!((empty.uid, empty.count, empty.all), (true, None, None));
        let Ok(Data::ESearch(ext)) = esearch(b" COUNT 5 XFOO (a b) RELEVANCY (1 2)") else {
            panic!()
        };
        assert_eq!(ext.count, Some(5));
        assert!(esearch(b" COUNT").is_err());
        assert!(esearch(b" ALL 0").is_err());
    }
}
