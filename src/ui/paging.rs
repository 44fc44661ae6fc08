//! Pages of a long list (the SLOs, the policies, the releases): which page, how many a page, and
//! the rows of the page shown. Bounded like every parameter: a page past the end shows the last.

/// Rows a page unless `per` says otherwise.
pub const PER_PAGE: usize = 100;
pub const MIN_PER_PAGE: usize = 10;
pub const MAX_PER_PAGE: usize = 500;
const MAX_PAGE: usize = 1_000_000;

/// `page` (from 1) and `per` of a query string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paging {
    pub page: usize,
    pub per_page: usize,
}

impl Default for Paging {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: PER_PAGE,
        }
    }
}

/// The rows of one page, and where it is among the others.
#[derive(Debug)]
pub struct Paged<T> {
    pub rows: Vec<T>,
    /// Rows on every page together.
    pub matching: usize,
    /// The page shown (from 1) and how many there are (at least 1).
    pub page: usize,
    pub pages: usize,
    /// The position of the page's first row among all (from 1; 0 when there is none).
    pub first: usize,
}

impl Paging {
    /// Reads `page` or `per`: `Ok(false)` for another key, an error that names the parameter.
    pub fn read(&mut self, key: &str, value: &str) -> Result<bool, String> {
        match key {
            "page" => self.page = number("page", value, 1, MAX_PAGE)?,
            "per" => self.per_page = number("per", value, MIN_PER_PAGE, MAX_PER_PAGE)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The page of `rows` (already filtered and sorted) asked for.
    pub fn slice<T>(self, rows: Vec<T>) -> Paged<T> {
        let per = self.per_page.max(1);
        let matching = rows.len();
        let pages = matching.div_ceil(per).max(1);
        let page = self.page.clamp(1, pages);
        let start = (page - 1) * per;
        let rows: Vec<T> = rows.into_iter().skip(start).take(per).collect();
        Paged {
            first: if rows.is_empty() { 0 } else { start + 1 },
            rows,
            matching,
            page,
            pages,
        }
    }

    /// The `page` and `per` pairs of a link, only where they differ from the defaults.
    pub fn pairs(self) -> [(&'static str, Option<String>); 2] {
        [
            ("page", (self.page != 1).then(|| self.page.to_string())),
            ("per", (self.per_page != PER_PAGE).then(|| self.per_page.to_string())),
        ]
    }
}

fn number(what: &str, value: &str, min: usize, max: usize) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("{what}: a whole number from {min} to {max}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_holds_what_was_asked_and_past_the_end_shows_the_last() {
        let rows: Vec<usize> = (1..=25).collect();
        let p = Paging { page: 2, per_page: 10 }.slice(rows.clone());
        assert_eq!(
            (p.rows.first(), p.rows.len(), p.page, p.pages, p.first),
            (Some(&11), 10, 2, 3, 11)
        );
        let past = Paging { page: 9, per_page: 10 }.slice(rows);
        assert_eq!((past.rows, past.page, past.first), (vec![21, 22, 23, 24, 25], 3, 21));
        let none = Paging::default().slice(Vec::<usize>::new());
        assert_eq!((none.rows.len(), none.page, none.pages, none.first), (0, 1, 1, 0));
    }

    fn parse<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Paging, String> {
        let mut paging = Paging::default();
        for (key, value) in params {
            paging.read(key, value)?;
        }
        Ok(paging)
    }

    #[test]
    fn parameters_are_bounded_and_named() {
        assert_eq!(
            parse([("page", "3"), ("per", "50"), ("q", "x")]),
            Ok(Paging { page: 3, per_page: 50 })
        );
        assert_eq!(
            parse([("page", "0")]).unwrap_err(),
            "page: a whole number from 1 to 1000000"
        );
        assert_eq!(
            parse([("per", "100000")]).unwrap_err(),
            "per: a whole number from 10 to 500"
        );
        assert_eq!(
            parse([("per", "-1")]).unwrap_err(),
            "per: a whole number from 10 to 500"
        );
        assert_eq!(
            Paging {
                page: 2,
                per_page: PER_PAGE
            }
            .pairs(),
            [("page", Some("2".into())), ("per", None)]
        );
    }
}
