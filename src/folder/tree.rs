//! The two hierarchies a plan is built on: source folders by decoded path, and target names
//! handed out one sibling level at a time. Both are tries with parent links, so a hostile
//! listing with very deep names costs memory linear in its size, and nothing recurses.

use std::borrow::Cow;
use std::collections::HashMap;

use super::sanitize::{TargetPath, TargetRules};
use super::source::Located;

/// The root node of either tree.
pub(crate) const ROOT: usize = 0;

/// Who asks for a target name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claimant {
    /// The listed source folder, if any (a parent the server did not list has none).
    pub folder: Option<usize>,
    /// Whether this is a new name for a system folder or the root, which must not take a
    /// name an earlier plan gave to parents of other folders.
    pub fresh: bool,
}

#[derive(Debug)]
pub(crate) struct SourceNode {
    pub parent: usize,
    /// Levels below the root (the root is 0).
    pub depth: usize,
    pub name: String,
    /// The listed folder at this node; `None` for a parent the server did not list.
    pub folder: Option<usize>,
    pub children: Vec<usize>,
    /// For a second folder with the same decoded path: the node of the first.
    pub twin_of: Option<usize>,
}

/// Source folders by decoded path. Nodes are created parents first, so walking them by index
/// visits every parent before its children.
#[derive(Debug)]
pub(crate) struct SourceTree {
    pub nodes: Vec<SourceNode>,
    /// The node of each listed folder; `None` for folders outside the personal namespace.
    pub node_of: Vec<Option<usize>>,
    /// The top-level INBOX node, listed or only a parent.
    pub inbox: Option<usize>,
}

impl SourceTree {
    /// Builds the tree from folders sorted by raw name. Two folders whose names decode to
    /// the same path (say one in modified UTF-7, one in UTF-8, or `INBOX` and `inbox`) become
    /// two sibling nodes, told apart later like any other collision: the first by raw name
    /// is the primary, which the folders below that path hang under; the other is its twin.
    pub fn build(located: &[Located]) -> SourceTree {
        let mut nodes = vec![SourceNode {
            parent: ROOT,
            depth: 0,
            name: String::new(),
            folder: None,
            children: Vec::new(),
            twin_of: None,
        }];
        let mut index: HashMap<(usize, Cow<str>), usize> = HashMap::new();
        let mut node_of = vec![None; located.len()];
        for (i, loc) in located.iter().enumerate() {
            if !loc.personal {
                continue;
            }
            let mut at = ROOT;
            for component in &loc.path {
                let key = (at, source_key(at, component));
                at = match index.get(&key) {
                    Some(&node) => node,
                    None => {
                        let node = nodes.len();
                        nodes.push(SourceNode {
                            parent: at,
                            depth: nodes[at].depth + 1,
                            name: component.clone(),
                            folder: None,
                            children: Vec::new(),
                            twin_of: None,
                        });
                        nodes[at].children.push(node);
                        index.insert(key, node);
                        node
                    }
                };
            }
            if nodes[at].folder.is_some() {
                let primary = at;
                at = nodes.len();
                let parent = nodes[primary].parent;
                nodes.push(SourceNode {
                    parent,
                    depth: nodes[primary].depth,
                    name: loc.path.last().cloned().unwrap_or_default(),
                    folder: None,
                    children: Vec::new(),
                    twin_of: Some(primary),
                });
                nodes[parent].children.push(at);
            }
            nodes[at].folder = Some(i);
            node_of[i] = Some(at);
        }
        let inbox = index.get(&(ROOT, Cow::Borrowed("INBOX"))).copied();
        SourceTree {
            nodes,
            node_of,
            inbox,
        }
    }

    /// Swaps the folders (and their names) of a twin and its primary, so the folders below
    /// follow the twin's folder.
    pub fn swap_with_primary(&mut self, twin: usize) {
        let Some(primary) = self.nodes[twin].twin_of else {
            return;
        };
        let (a, b) = (self.nodes[primary].folder, self.nodes[twin].folder);
        self.nodes[primary].folder = b;
        self.nodes[twin].folder = a;
        let name = std::mem::take(&mut self.nodes[primary].name);
        self.nodes[primary].name = std::mem::replace(&mut self.nodes[twin].name, name);
        for (folder, node) in [(a, twin), (b, primary)] {
            if let Some(i) = folder {
                self.node_of[i] = Some(node);
            }
        }
    }
}

/// How source components are told apart: exactly, except INBOX at the top level, which is
/// the INBOX in any case (RFC 3501 5.1), so `inbox/Receipts` sits under `INBOX`.
fn source_key(parent: usize, component: &str) -> Cow<'_, str> {
    if parent == ROOT && component.eq_ignore_ascii_case("INBOX") {
        Cow::Borrowed("INBOX")
    } else {
        Cow::Borrowed(component)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Only a parent of something reserved, held or taken; a source folder may still land
    /// here.
    Free,
    /// Given to this source folder (by index) by the previous plan: only it may take it.
    Held(usize),
    /// Held for a system folder or an existing folder that cannot hold mail.
    Reserved,
    /// Given to one source folder.
    Taken,
}

#[derive(Debug)]
struct TargetNode {
    parent: usize,
    name: String,
    depth: usize,
    /// Encoded length of the whole path, delimiters included.
    path_len: usize,
    slot: Slot,
    /// A parent of a name held from the previous plan: a new system folder may not take it.
    pinned: bool,
}

/// Target names, handed out so that no two source folders ever share one.
#[derive(Debug)]
pub(crate) struct TargetTree<'r> {
    rules: &'r TargetRules,
    nodes: Vec<TargetNode>,
    index: HashMap<(usize, String), usize>,
    /// Next collision suffix to try per (parent, name key): keeps many equal names linear.
    next_suffix: HashMap<(usize, String), usize>,
}

impl<'r> TargetTree<'r> {
    pub fn new(rules: &'r TargetRules) -> TargetTree<'r> {
        TargetTree {
            rules,
            nodes: vec![TargetNode {
                parent: ROOT,
                name: String::new(),
                depth: 0,
                path_len: 0,
                slot: Slot::Free,
                pinned: false,
            }],
            index: HashMap::new(),
            next_suffix: HashMap::new(),
        }
    }

    /// The form names are compared in under `parent`. INBOX is the INBOX in any case at the
    /// top level of every IMAP server, whatever the rules say about case.
    fn key(&self, parent: usize, name: &str) -> String {
        if parent == ROOT && name.eq_ignore_ascii_case("INBOX") {
            "inbox".to_owned()
        } else {
            self.rules.collision_key(name)
        }
    }

    fn find(&self, parent: usize, name: &str) -> Option<usize> {
        self.index.get(&(parent, self.key(parent, name))).copied()
    }

    fn node(&mut self, parent: usize, name: &str) -> usize {
        if let Some(node) = self.find(parent, name) {
            return node;
        }
        let node = self.nodes.len();
        let (depth, path_len) = match parent {
            ROOT => (1, self.rules.encoded_len(name)),
            _ => {
                let p = &self.nodes[parent];
                (p.depth + 1, p.path_len + 1 + self.rules.encoded_len(name))
            }
        };
        self.nodes.push(TargetNode {
            parent,
            name: name.to_owned(),
            depth,
            path_len,
            slot: Slot::Free,
            pinned: false,
        });
        self.index.insert((parent, self.key(parent, name)), node);
        node
    }

    /// Whether `claimant` may take `name` under `parent`: free, or held for it. A `fresh`
    /// claim (a system folder's new name) also avoids parents of held names.
    fn available(&self, parent: usize, name: &str, claimant: Claimant) -> bool {
        if self.rules.is_reserved(name) {
            return false;
        }
        let Some(node) = self.find(parent, name) else {
            return true;
        };
        match self.nodes[node].slot {
            Slot::Free => !(claimant.fresh && self.nodes[node].pinned),
            Slot::Held(owner) => claimant.folder == Some(owner),
            Slot::Reserved | Slot::Taken => false,
        }
    }

    fn take(&mut self, parent: usize, name: &str) -> usize {
        let node = self.node(parent, name);
        self.nodes[node].slot = Slot::Taken;
        node
    }

    /// The byte budget of one component under `parent`.
    fn room(&self, parent: usize) -> usize {
        let used = if parent == ROOT {
            0
        } else {
            self.nodes[parent].path_len + 1
        };
        match self.rules.max_path_bytes() {
            Some(max) => max.saturating_sub(used).min(self.rules.max_component_bytes()),
            None => self.rules.max_component_bytes(),
        }
    }

    /// Gives a source folder called `name` a free name under `parent`: `preferred` if it is
    /// clean, fits and is free (the name an earlier plan gave it), else the sanitised name,
    /// else that name with the first free suffix ` (2)`, ` (3)`, ... `None` if no name fits
    /// the path length limit.
    pub fn claim(
        &mut self,
        parent: usize,
        name: &str,
        preferred: Option<&str>,
        claimant: Claimant,
    ) -> Option<usize> {
        let limit = self.room(parent);
        if let Some(preferred) = preferred
            && self.rules.is_clean(preferred)
            && self.rules.encoded_len(preferred) <= limit
            // The previous plan's own name for this folder, so it may be a parent of held
            // names: they are its children's.
            && self.available(parent, preferred, Claimant { fresh: false, ..claimant })
        {
            return Some(self.take(parent, preferred));
        }
        let base = self.rules.sanitize_within(name, limit)?;
        if self.available(parent, &base, claimant) {
            return Some(self.take(parent, &base));
        }
        let counter = (parent, self.key(parent, &base));
        let mut n = self.next_suffix.get(&counter).copied().unwrap_or(2);
        // Each candidate ends in a different "(n)", so each failure is a distinct occupied
        // name: the loop ends after at most as many tries as there are names under `parent`.
        loop {
            let candidate = self.rules.with_suffix(&base, n, limit)?;
            n += 1;
            if self.available(parent, &candidate, claimant) {
                self.next_suffix.insert(counter, n);
                return Some(self.take(parent, &candidate));
            }
        }
    }

    /// Holds `path` (as the target itself names it) so no source folder is given it.
    pub fn reserve(&mut self, path: &[String]) -> Option<usize> {
        let mut at = ROOT;
        for component in path {
            at = self.node(at, component);
        }
        if at == ROOT {
            return None;
        }
        if self.nodes[at].slot == Slot::Free {
            self.nodes[at].slot = Slot::Reserved;
        }
        Some(at)
    }

    /// The sanitised name a claim for `name` under `parent` starts from.
    pub fn base_name(&self, parent: usize, name: &str) -> Option<String> {
        self.rules.sanitize_within(name, self.room(parent))
    }

    /// Whether claiming `name` under `parent` can yield `candidate`, and how: `Some(0)` for
    /// the sanitised name itself, `Some(n)` for it with the suffix ` (n)`.
    pub fn could_name(&self, parent: usize, name: &str, candidate: &str) -> Option<usize> {
        let base = self.base_name(parent, name)?;
        let same = |a: &str| self.key(parent, a) == self.key(parent, candidate);
        if same(&base) {
            return Some(0);
        }
        let n = candidate
            .strip_suffix(')')
            .and_then(|rest| rest.rsplit_once(" ("))
            .and_then(|(_, n)| n.parse::<usize>().ok())
            .filter(|&n| n >= 2)?;
        self.rules
            .with_suffix(&base, n, self.room(parent))
            .filter(|s| same(s))
            .map(|_| n)
    }

    /// Gives `path` (an existing folder: the INBOX, the target's folder for a role) to one
    /// source folder, whatever held or reserved it, so no other source folder gets it.
    pub fn occupy(&mut self, path: &[String]) -> Option<usize> {
        let node = self.reserve(path)?;
        self.nodes[node].slot = Slot::Taken;
        Some(node)
    }

    /// Holds `path` for source folder `owner`, as the previous plan named it, so neither a
    /// system folder nor another folder takes it. Ignored unless valid and still free.
    pub fn hold(&mut self, path: &[String], owner: usize) {
        if !self.is_valid(path) {
            return;
        }
        let mut at = ROOT;
        for component in path {
            at = self.node(at, component);
            self.nodes[at].pinned = true;
        }
        if self.nodes[at].slot == Slot::Free {
            self.nodes[at].slot = Slot::Held(owner);
        }
    }

    /// Whether `path` is one the rules allow creating as it is.
    pub fn is_valid(&self, path: &[String]) -> bool {
        !path.is_empty()
            && path
                .iter()
                .all(|c| self.rules.is_clean(c) && !self.rules.is_reserved(c))
            && self
                .rules
                .max_path_bytes()
                .is_none_or(|max| self.rules.path_len(path) <= max)
    }

    /// Whether `node` is called `name` (as the target compares names).
    pub fn is_named(&self, node: usize, name: &str) -> bool {
        let parent = self.nodes[node].parent;
        self.key(parent, &self.nodes[node].name) == self.key(parent, name)
    }

    pub fn depth(&self, node: usize) -> usize {
        self.nodes[node].depth
    }

    /// The components of `node`'s path, outermost first.
    pub fn components(&self, node: usize) -> Vec<String> {
        let mut parts = Vec::with_capacity(self.nodes[node].depth);
        let mut at = node;
        while at != ROOT {
            parts.push(self.nodes[at].name.clone());
            at = self.nodes[at].parent;
        }
        parts.reverse();
        parts
    }

    pub fn path(&self, node: usize) -> TargetPath {
        TargetPath::from(self.components(node))
    }

    /// Whether two component lists name the same folder under the rules.
    pub fn same(&self, a: &[String], b: &[String]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).enumerate().all(|(i, (x, y))| {
                let parent = if i == 0 { ROOT } else { usize::MAX };
                self.key(parent, x) == self.key(parent, y)
            })
    }
}
