//! The folder plan: for every source folder, the target folder it goes to and its role, or
//! why it is skipped.

use std::collections::{BTreeMap, BTreeSet};

use crate::imap::codec::{MailboxName, NameEncoding};

use super::role::{Evidence, Role, role_for_name, role_from_attributes};
use super::sanitize::{TargetPath, TargetRules};
use super::source::{ListedFolder, Located, Namespaces, SourceListing, locate, pattern_matches};
use super::tree::{Claimant, ROOT, SourceNode, SourceTree, TargetTree};

/// Where mail lands on the target: the two storage plans of the product guide.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Layout {
    /// Keep each source folder: system folders go to the target's own system folders
    /// (whatever the target calls them), custom folders keep their hierarchy.
    #[default]
    Mirror,
    /// Everything under one folder named `root` (usually the source address), system
    /// folders under recognisable names: `old@example.com/Inbox`, `old@example.com/Sent`.
    UnderAddress {
        /// The root folder's name, sanitised like any other.
        root: String,
    },
}

/// Choices the caller makes about a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// Where mail lands.
    pub layout: Layout,
    /// Skip virtual folders that duplicate others (`\All`, `\Flagged`, `\Important`:
    /// Gmail's All Mail, Starred and Important). On by default. Note that Gmail mail that
    /// was archived (no label left) lives only in All Mail: turn this off to copy All Mail
    /// as an ordinary folder, at the cost of a second copy of every labelled message.
    pub skip_virtual: bool,
    /// Folders to skip, as LIST-style patterns over the folder's path after the personal
    /// namespace prefix, components joined by `/`: `*` matches anything, `%` anything but
    /// `/`. `Archive*` skips Archive and everything under it; `Archive` only Archive itself.
    pub exclude: Vec<String>,
    /// Names for system folders created by the plan, replacing [`Role::default_name`]
    /// (under [`Layout::UnderAddress`], and in [`Layout::Mirror`] for roles the target has
    /// no folder for).
    pub role_names: BTreeMap<Role, String>,
    /// The mapping of an earlier plan for this account ([`FolderPlan::mapping`]): folders
    /// keep the target names they were given as long as those are still free and valid,
    /// and a folder that held a system role keeps it.
    pub previous: BTreeMap<MailboxName, TargetPath>,
}

impl Default for PlanOptions {
    fn default() -> PlanOptions {
        PlanOptions {
            layout: Layout::Mirror,
            skip_virtual: true,
            exclude: Vec::new(),
            role_names: BTreeMap::new(),
            previous: BTreeMap::new(),
        }
    }
}

impl PlanOptions {
    fn role_name(&self, role: Role) -> &str {
        self.role_names
            .get(&role)
            .map_or(role.default_name(), String::as_str)
    }
}

/// The target: its naming rules and its folders as listed, so its own system folders are
/// found whatever they are called. A fresh Maildir lists nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetListing {
    /// What names the target accepts.
    pub rules: TargetRules,
    /// The target's LIST results.
    pub folders: Vec<ListedFolder>,
    /// The target's personal namespace prefix, removed from its names like the source's.
    pub personal_prefix: MailboxName,
}

impl TargetListing {
    /// A target with `rules` and no folders yet.
    pub fn new(rules: TargetRules) -> TargetListing {
        TargetListing {
            rules,
            folders: Vec::new(),
            personal_prefix: MailboxName::from_raw(bytes::Bytes::new()),
        }
    }

    /// Sets the target's listed folders.
    pub fn with_folders(mut self, folders: impl IntoIterator<Item = ListedFolder>) -> TargetListing {
        self.folders = folders.into_iter().collect();
        self
    }

    /// Sets the target's personal namespace prefix (raw).
    pub fn with_personal_prefix(mut self, prefix: impl Into<bytes::Bytes>) -> TargetListing {
        self.personal_prefix = MailboxName::from_raw(prefix);
        self
    }
}

/// Why a source folder is not copied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum SkipReason {
    /// A virtual folder whose messages all live in other folders too.
    Virtual(Role),
    /// `\Noselect` (or `\NonExistent`) and nothing kept under it: a container with no use
    /// on the target, like Gmail's `[Gmail]`.
    NoselectEmpty,
    /// The caller's exclusion pattern matched.
    Excluded {
        /// The pattern that matched.
        pattern: String,
    },
    /// In another user's or a shared namespace: not this account's mail.
    OtherNamespace,
    /// So deep that no name fits the target's path length limit under its parent.
    PathTooLong,
}

/// What happens to one source folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Decision {
    /// Copy the folder's messages into `path`.
    Copy {
        /// The target folder.
        path: TargetPath,
        /// The system role recognised for the source folder, if it won one. In
        /// [`Layout::Mirror`] such a folder goes to the target's folder for that role.
        role: Option<Role>,
    },
    /// Create `path` without copying: the source folder holds no messages (`\Noselect`)
    /// but folders kept under it need it as their parent.
    CreateOnly {
        /// The target folder.
        path: TargetPath,
    },
    /// Leave the folder out.
    Skip(SkipReason),
}

impl Decision {
    /// The target folder, unless skipped.
    pub fn path(&self) -> Option<&TargetPath> {
        match self {
            Decision::Copy { path, .. } | Decision::CreateOnly { path } => Some(path),
            Decision::Skip(_) => None,
        }
    }

    /// The role, for a folder copied as a system folder.
    pub fn role(&self) -> Option<Role> {
        match self {
            Decision::Copy { role, .. } => *role,
            _ => None,
        }
    }
}

/// The plan for one source folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanEntry {
    /// The folder's name as the source sent it: use it to SELECT the folder.
    pub source: MailboxName,
    /// The name as read (for people).
    pub name: String,
    /// How the name was read; [`NameEncoding::Lossy`] means the bytes fit no known charset.
    pub encoding: NameEncoding,
    /// What happens to it.
    pub decision: Decision,
}

/// Where every source folder goes. Deterministic: the same listings and options give the
/// same plan whatever order LIST returned folders in.
///
/// # How names are chosen
///
/// - Names are decoded (modified UTF-7, UTF-8, GB18030/GBK and other legacy charsets), the
///   personal namespace prefix is removed (`INBOX.Projects.2024` → `Projects` > `2024`),
///   and folders outside the personal namespace are skipped.
/// - **Roles.** A folder named INBOX (any case) is the INBOX; otherwise a SPECIAL-USE
///   attribute gives the role, then an XLIST attribute, then the folder's name if it is at
///   the top level (or directly under INBOX or a [provider
///   container](super::ProviderHints::containers)) and in the name table
///   ([`role_for_name`]). When several folders claim one role, the winner is the first by:
///   the folder that held the role in [`PlanOptions::previous`]; stronger evidence
///   (INBOX name, SPECIAL-USE, XLIST, name); fewer levels deep; already named like the
///   role's target folder; raw name bytes. The others keep their own names as custom
///   folders. Virtual roles are skipped by default ([`PlanOptions::skip_virtual`]). With
///   a previous mapping, a folder it placed elsewhere (or whose children it placed
///   elsewhere) keeps that place rather than taking a role that would move its mail.
/// - **Mirror.** The INBOX goes to `INBOX`, each other role to the target's folder with
///   that role (found in the target listing by the same rules) or, when it has none, to a
///   new top-level folder named [`Role::default_name`]. Custom folders keep their
///   hierarchy; folders under a system folder follow it.
/// - **Under address.** The root folder holds `Inbox`, one folder per role under its
///   default name (or [`PlanOptions::role_names`]), and the custom hierarchy.
/// - **Sanitising.** Each component is made acceptable ([`TargetRules::sanitize`]) and cut
///   to what the target's length limits leave under its parent; a folder with no room left
///   at all is skipped ([`SkipReason::PathTooLong`]).
/// - **Collisions.** No two source folders ever share a target folder, and none lands in
///   the target's system folders, its `\Noselect` folders or a reserved name. Names are
///   handed out level by level: at each level, folders whose previous target name is
///   still free take it first, then the others in the order of their raw source names;
///   a folder whose sanitised name is taken (compared without case if the target ignores
///   case) gets the first free ` (2)`, ` (3)`, ... So a folder keeps its target name across
///   runs as long as it keeps winning that order, or always when the previous mapping is
///   passed in: names from the previous plan are held for their folders, so neither a new
///   folder nor a newly recognised system folder takes them.
/// - Folders listed only as parents (not themselves listed) are placed like the others
///   so their children keep the hierarchy; `\Noselect` folders are created only when
///   something is kept under them.
/// - Two raw names that decode to the same path (`INBOX` and `inbox`, or one name sent
///   in modified UTF-7 and in UTF-8) are two folders with two target folders; the folders
///   below that path follow the one that holds a system role, else the first by raw name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderPlan {
    entries: Vec<PlanEntry>,
    root: Option<TargetPath>,
}

/// Where a role's folder goes.
#[derive(Debug)]
enum Destination {
    /// An existing folder (the INBOX, the target's own folder for the role).
    At(Vec<String>),
    /// A new folder called `name` under the target folder `parent`: `name` sanitised, or
    /// with a suffix if that is taken.
    Named { parent: usize, name: String },
}

impl Destination {
    /// Whether a folder at `place` is this destination, and how closely: `Some(0)` for the
    /// folder itself, `Some(n)` for a new folder's name with suffix ` (n)` (the role's folder
    /// was named first, so it has the lowest suffix of all folders of that name).
    fn rank(&self, place: &[String], targets: &TargetTree) -> Option<usize> {
        match self {
            Destination::At(path) => targets.same(place, path).then_some(0),
            Destination::Named { parent, name } => {
                let above = if *parent == ROOT {
                    Vec::new()
                } else {
                    targets.components(*parent)
                };
                let (last, up) = place.split_last()?;
                (up.len() == above.len() && targets.same(up, &above))
                    .then(|| targets.could_name(*parent, name, last))
                    .flatten()
            }
        }
    }

    /// The folder's own name, as it is or would be without a suffix.
    fn name(&self, targets: &TargetTree) -> Option<String> {
        match self {
            Destination::At(path) => path.last().cloned(),
            Destination::Named { parent, name } => targets.base_name(*parent, name),
        }
    }
}

/// What is known about a folder before any name is handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pre {
    Other,
    Excluded(String),
    Noselect,
    Virtual(Role),
    Copy,
}

impl FolderPlan {
    /// Plans where every folder of `source` goes on `target`.
    ///
    /// ```
    /// use mailmigrate::folder::{
    ///     Decision, FolderPlan, ListedFolder, PlanOptions, Role, SourceListing, TargetListing, TargetPath,
    ///     TargetRules,
    /// };
    /// // A Courier source: personal namespace "INBOX.", "." delimiter.
    /// let source = SourceListing::new([
    ///     ListedFolder::new("INBOX", Some('.'), ["\\HasChildren"]),
    ///     ListedFolder::new("INBOX.Sent Messages", Some('.'), [""; 0]),
    ///     ListedFolder::new("INBOX.Projects", Some('.'), [""; 0]),
    ///     ListedFolder::new("INBOX.Projects.2024/Q1", Some('.'), [""; 0]),
    /// ])
    /// .with_personal_prefix("INBOX.");
    /// // An Exchange target that calls its Sent folder "Sent Items".
    /// let target = TargetListing::new(TargetRules::exchange()).with_folders([
    ///     ListedFolder::new("INBOX", Some('/'), [""; 0]),
    ///     ListedFolder::new("Sent Items", Some('/'), ["\\Sent"]),
    /// ]);
    /// let plan = FolderPlan::build(&source, &target, &PlanOptions::default());
    ///
    /// let sent = plan.entries().iter().find(|e| e.name == "INBOX.Sent Messages").unwrap();
    /// assert_eq!(sent.decision, Decision::Copy { path: TargetPath::new(["Sent Items"]), role: Some(Role::Sent) });
    /// let q1 = plan.entries().iter().find(|e| e.name == "INBOX.Projects.2024/Q1").unwrap();
    /// assert_eq!(q1.decision.path(), Some(&TargetPath::new(["Projects", "2024／Q1"])));
    /// ```
    pub fn build(source: &SourceListing, target: &TargetListing, options: &PlanOptions) -> FolderPlan {
        let folders = merge(&source.folders);
        let namespaces = Namespaces::new(&source.personal_prefix, &source.other_prefixes);
        let located: Vec<Located> = folders
            .iter()
            .map(|f| locate(f, &namespaces, &source.hints.containers))
            .collect();
        let pre: Vec<Pre> = folders
            .iter()
            .zip(&located)
            .map(|(folder, loc)| pre_decision(folder, loc, options))
            .collect();
        let candidates = folders
            .iter()
            .zip(&located)
            .zip(&pre)
            .map(|((folder, loc), pre)| match pre {
                Pre::Copy | Pre::Virtual(_) => candidate_role(folder, loc),
                _ => None,
            })
            .collect();
        let mut planner = Planner {
            options,
            rules: &target.rules,
            tree: SourceTree::build(&located),
            targets: TargetTree::new(&target.rules),
            folders: &folders,
            located: &located,
            pre: &pre,
            candidates,
        };

        let target_roles = reserve_target_listing(&mut planner.targets, target);
        let base = match &options.layout {
            Layout::Mirror => Some(ROOT),
            Layout::UnderAddress { root } => planner.targets.claim(
                ROOT,
                root,
                None,
                Claimant {
                    folder: None,
                    fresh: true,
                },
            ),
        };
        // Names the previous plan gave are held for their folders before system folders pick
        // new names, so a newly recognised role never takes an existing folder's name.
        for (name, path) in &options.previous {
            if let Ok(i) = folders.binary_search_by(|f| f.name.cmp(name)) {
                planner.targets.hold(path.components(), i);
            }
        }
        if options.layout == Layout::Mirror {
            // The INBOX exists on every IMAP target: no other folder may take its name.
            planner.targets.reserve(&["INBOX".to_owned()]);
        }

        let winners = planner.resolve_roles(&target_roles, base);
        let placement = planner.place(&winners, &target_roles, base);
        let entries = planner.decide(&placement);
        let root = match options.layout {
            Layout::UnderAddress { .. } => base.map(|b| planner.targets.path(b)),
            Layout::Mirror => None,
        };
        FolderPlan { entries, root }
    }

    /// One entry per distinct source folder, ordered by raw source name.
    pub fn entries(&self) -> &[PlanEntry] {
        &self.entries
    }

    /// The entry of the source folder named `source` (raw).
    pub fn entry(&self, source: &MailboxName) -> Option<&PlanEntry> {
        self.entries
            .binary_search_by(|e| e.source.cmp(source))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The root folder of [`Layout::UnderAddress`].
    pub fn root(&self) -> Option<&TargetPath> {
        self.root.as_ref()
    }

    /// Source folder → target folder for every folder not skipped: save it and pass it as
    /// [`PlanOptions::previous`] next time to keep names stable.
    pub fn mapping(&self) -> BTreeMap<MailboxName, TargetPath> {
        self.entries
            .iter()
            .filter_map(|e| e.decision.path().map(|p| (e.source.clone(), p.clone())))
            .collect()
    }

    /// Every target folder the plan needs, with the parents of each, parents first (so
    /// creating them in this order works on servers that do not create parents).
    pub fn paths_to_create(&self) -> Vec<TargetPath> {
        let mut all = BTreeSet::new();
        let planned = self.entries.iter().filter_map(|e| e.decision.path());
        for path in planned.chain(self.root.iter()) {
            for len in 1..=path.len() {
                all.insert(TargetPath::new(path.components()[..len].iter().cloned()));
            }
        }
        all.into_iter().collect()
    }
}

/// The state of one [`FolderPlan::build`], in the order it is worked out: roles, then
/// places, then decisions.
struct Planner<'a> {
    options: &'a PlanOptions,
    rules: &'a TargetRules,
    tree: SourceTree,
    targets: TargetTree<'a>,
    folders: &'a [ListedFolder],
    located: &'a [Located],
    pre: &'a [Pre],
    candidates: Vec<Option<(Role, Evidence)>>,
}

/// At most this many distinct earlier places are kept per node (see [`Planner::places`]).
const MAX_PLACES: usize = 16;

impl<'a> Planner<'a> {
    /// Where the previous plan put each node: its own folder's earlier path if it has one
    /// (authoritative), else the parents of where it put the folders below (a few distinct
    /// ones, first by raw name: children of a folder that was moved into a system folder
    /// imply a wrong place, so the others are checked against where the node's parent is
    /// now). With `inherit`, a twin without a path of its own sees its primary's children's
    /// places, as they would follow it if it took a role.
    fn places(&self, inherit: bool) -> Vec<Vec<(usize, &'a [String])>> {
        let nodes = &self.tree.nodes;
        let previous = &self.options.previous;
        let own: Vec<Option<(usize, &'a [String])>> = nodes
            .iter()
            .map(|n| {
                n.folder
                    .and_then(|i| previous.get(&self.folders[i].name).map(|p| (i, p.components())))
            })
            .collect();
        let mut implied: Vec<Vec<(usize, &'a [String])>> = vec![Vec::new(); nodes.len()];
        for n in (1..nodes.len()).rev() {
            // Every child has a higher index, so `implied[n]` is complete here.
            let list = &mut implied[n];
            list.sort_by_key(|&(i, _)| i);
            let mut seen = BTreeSet::new();
            list.retain(|&(_, p)| seen.insert(p));
            list.truncate(MAX_PLACES);
            let parent = nodes[n].parent;
            if parent == ROOT {
                continue;
            }
            let mine = match own[n] {
                Some(place) => vec![place],
                None => implied[n].clone(),
            };
            let up = mine
                .into_iter()
                .filter_map(|(i, p)| p.split_last().map(|(_, up)| (i, up)));
            implied[parent].extend(up.filter(|(_, up)| !up.is_empty()));
        }
        (0..nodes.len())
            .map(|n| match (own[n], nodes[n].twin_of) {
                (Some(place), _) => vec![place],
                (None, Some(primary)) if inherit => implied[primary].clone(),
                (None, _) => implied[n].clone(),
            })
            .collect()
    }

    /// Where a role's folder goes.
    fn destination(
        &self,
        role: Role,
        target_roles: &BTreeMap<Role, usize>,
        base: Option<usize>,
    ) -> Destination {
        match (&self.options.layout, role) {
            (Layout::Mirror, Role::Inbox) => Destination::At(vec!["INBOX".to_owned()]),
            (Layout::Mirror, _) => match target_roles.get(&role) {
                Some(&node) => Destination::At(self.targets.components(node)),
                None => Destination::Named {
                    parent: ROOT,
                    name: self.options.role_name(role).to_owned(),
                },
            },
            (Layout::UnderAddress { .. }, _) => match base {
                Some(parent) => Destination::Named {
                    parent,
                    name: self.options.role_name(role).to_owned(),
                },
                None => Destination::At(Vec::new()),
            },
        }
    }

    /// Picks one folder per role (see [`FolderPlan`] for the order), then lets a twin that
    /// won a role change places with its primary so the folders below follow the role.
    fn resolve_roles(
        &mut self,
        target_roles: &BTreeMap<Role, usize>,
        base: Option<usize>,
    ) -> BTreeMap<Role, usize> {
        let places = self.places(true);
        let tree = &self.tree;
        let targets = &self.targets;
        let mut winners = BTreeMap::new();
        for role in Role::ALL.into_iter().filter(|r| !r.is_virtual()) {
            let destination = self.destination(role, target_roles, base);
            // With a previous plan, a folder it placed elsewhere (or whose children it
            // placed elsewhere) stays there rather than taking a role that moves its mail.
            let placed_elsewhere = |node: usize| {
                !places[node].is_empty()
                    && !places[node]
                        .iter()
                        .any(|(_, p)| destination.rank(p, targets).is_some())
            };
            // The INBOX folder keeps the INBOX if it had it, even when it cannot hold mail
            // itself (\Noselect) and another name for the INBOX (`inbox`) appears.
            let inbox_kept = tree.inbox.filter(|&n| {
                role == Role::Inbox
                    && tree.nodes[n].folder.is_some_and(|i| {
                        let earlier = self.options.previous.get(&self.folders[i].name);
                        earlier.is_some_and(|p| destination.rank(p.components(), targets) == Some(0))
                    })
            });
            let winner = (0..self.folders.len())
                .filter(|&i| self.pre[i] == Pre::Copy && self.candidates[i].is_some_and(|(r, _)| r == role))
                .filter(|&i| tree.node_of[i].is_some_and(|n| !placed_elsewhere(n)))
                .filter(|&i| inbox_kept.is_none_or(|n| tree.node_of[i] == Some(n)))
                .min_by_key(|&i| {
                    let held = self
                        .options
                        .previous
                        .get(&self.folders[i].name)
                        .and_then(|p| destination.rank(p.components(), targets))
                        .unwrap_or(usize::MAX);
                    let evidence = self.candidates[i].map(|(_, e)| e);
                    let depth = self.located[i].own_path.len();
                    let named_like = self.located[i].path.last().is_some_and(|name| {
                        destination.name(targets).is_some_and(|d| {
                            self.rules.collision_key(&self.rules.sanitize(name))
                                == self.rules.collision_key(&d)
                        })
                    });
                    (held, evidence, depth, !named_like, i)
                });
            if let Some(i) = winner {
                winners.insert(role, i);
            }
        }
        let won: BTreeSet<usize> = winners.values().copied().collect();
        for &i in won.iter() {
            let Some(node) = self.tree.node_of[i] else {
                continue;
            };
            let primary_won = self.tree.nodes[node]
                .twin_of
                .is_some_and(|p| self.tree.nodes[p].folder.is_some_and(|f| won.contains(&f)));
            if !primary_won {
                self.tree.swap_with_primary(node);
            }
        }
        winners
    }

    /// Gives every node that needs one a target folder: system folders first, then level by
    /// level, at each level folders with an earlier name first, then by raw name.
    fn place(
        &mut self,
        winners: &BTreeMap<Role, usize>,
        target_roles: &BTreeMap<Role, usize>,
        base: Option<usize>,
    ) -> Placement {
        let places = self.places(false);
        let nodes = &self.tree.nodes;
        let mut target_of: Vec<Option<usize>> = vec![None; nodes.len()];
        let mut role_of: Vec<Option<Role>> = vec![None; nodes.len()];
        target_of[ROOT] = base;

        // The name the previous plan gave `node` (or implied for it) if it sat under the
        // target folder `at` then too, with the folder whose earlier path says so. When the
        // parent took exactly the name from that same earlier path (`verified`), the part
        // above is known to match; otherwise it is compared, but only this deep, so a
        // hostile listing with thousands of levels costs linear time.
        const MAX_COMPARED_DEPTH: usize = 64;
        let mut verified: Vec<Option<usize>> = vec![None; nodes.len()];
        let preferred_name =
            |node: usize, at: usize, above: Option<usize>, targets: &TargetTree| -> Option<(usize, String)> {
                if places[node].is_empty() {
                    return None;
                }
                let depth = if at == ROOT { 0 } else { targets.depth(at) };
                let mut parent_path = None;
                places[node]
                    .iter()
                    .filter(|(_, p)| p.len() == depth + 1)
                    .find_map(|&(i, p)| {
                        let matches = above == Some(i)
                            || (depth <= MAX_COMPARED_DEPTH
                                && targets.same(
                                    &p[..depth],
                                    parent_path.get_or_insert_with(|| targets.components(at)),
                                ));
                        matches.then(|| (i, p[depth].clone()))
                    })
            };

        let mut roles: Vec<(Role, usize)> = winners
            .iter()
            .filter_map(|(&role, &i)| self.tree.node_of[i].map(|node| (role, node)))
            .collect();
        // Without a folder winning the INBOX, the INBOX node (only listed as a parent, or
        // excluded, or \Noselect) still sits where the INBOX goes, so its children do too.
        if !winners.contains_key(&Role::Inbox)
            && let Some(node) = self.tree.inbox
        {
            roles.insert(0, (Role::Inbox, node));
        }
        for (role, node) in roles {
            let claimant = Claimant {
                folder: nodes[node].folder,
                fresh: true,
            };
            role_of[node] = Some(role);
            target_of[node] = match self.destination(role, target_roles, base) {
                Destination::At(path) => self.targets.occupy(&path),
                Destination::Named { parent, name } => {
                    let preferred = preferred_name(node, parent, None, &self.targets);
                    let claimed = self.targets.claim(
                        parent,
                        &name,
                        preferred.as_ref().map(|(_, n)| n.as_str()),
                        claimant,
                    );
                    if let (Some(got), Some((i, wanted))) = (claimed, &preferred) {
                        verified[node] = self.targets.is_named(got, wanted).then_some(*i);
                    }
                    claimed
                }
            };
        }

        // Which nodes need a place: folders to copy, and parents of anything placed under
        // them. Children come after parents, so one backward pass suffices.
        let copies = |n: &SourceNode| n.folder.is_some_and(|i| self.pre[i] == Pre::Copy);
        let mut wants: Vec<bool> = nodes.iter().map(copies).collect();
        // The first folder in each subtree, by raw name: the order siblings are served in.
        let mut first: Vec<usize> = nodes.iter().map(|n| n.folder.unwrap_or(usize::MAX)).collect();
        for n in (1..nodes.len()).rev() {
            let parent = nodes[n].parent;
            if wants[n] && role_of[n].is_none() {
                wants[parent] = true;
            }
            first[parent] = first[parent].min(first[n]);
        }

        for parent in 0..nodes.len() {
            let Some(at) = target_of[parent] else { continue };
            let mut children: Vec<(usize, Option<(usize, String)>)> = nodes[parent]
                .children
                .iter()
                .filter(|&&c| wants[c] && role_of[c].is_none())
                .map(|&c| (c, preferred_name(c, at, verified[parent], &self.targets)))
                .collect();
            children.sort_by_key(|(c, preferred)| (preferred.is_none(), first[*c]));
            for (c, preferred) in children {
                let claimant = Claimant {
                    folder: nodes[c].folder,
                    fresh: false,
                };
                let wanted = preferred.as_ref().map(|(_, n)| n.as_str());
                target_of[c] = self.targets.claim(at, &nodes[c].name, wanted, claimant);
                if let (Some(got), Some((i, wanted))) = (target_of[c], &preferred) {
                    verified[c] = self.targets.is_named(got, wanted).then_some(*i);
                }
            }
        }
        Placement { target_of, role_of }
    }

    /// The entry of every folder, ordered by raw name.
    fn decide(&self, placement: &Placement) -> Vec<PlanEntry> {
        let nodes = &self.tree.nodes;
        let Placement { target_of, role_of } = placement;
        // Which placed nodes end up holding something: a \Noselect folder is created only
        // when a folder kept below it needs it as a parent.
        let mut live: Vec<bool> = nodes
            .iter()
            .enumerate()
            .map(|(n, node)| target_of[n].is_some() && node.folder.is_some_and(|i| self.pre[i] == Pre::Copy))
            .collect();
        for n in (1..nodes.len()).rev() {
            if live[n] && role_of[n].is_none() && target_of[n].is_some() {
                live[nodes[n].parent] = true;
            }
        }
        self.folders
            .iter()
            .enumerate()
            .map(|(i, folder)| {
                let node = self.tree.node_of[i];
                let placed = node.and_then(|n| target_of[n]);
                let decision = match &self.pre[i] {
                    Pre::Other => Decision::Skip(SkipReason::OtherNamespace),
                    Pre::Excluded(pattern) => Decision::Skip(SkipReason::Excluded {
                        pattern: pattern.clone(),
                    }),
                    Pre::Virtual(role) => Decision::Skip(SkipReason::Virtual(*role)),
                    Pre::Noselect => match (node, placed) {
                        (Some(n), Some(at)) if live[n] => Decision::CreateOnly {
                            path: self.targets.path(at),
                        },
                        _ => Decision::Skip(SkipReason::NoselectEmpty),
                    },
                    Pre::Copy => match placed {
                        Some(at) => Decision::Copy {
                            path: self.targets.path(at),
                            role: node
                                .and_then(|n| role_of[n])
                                .or_else(|| self.candidates[i].map(|(r, _)| r).filter(|r| r.is_virtual())),
                        },
                        None => Decision::Skip(SkipReason::PathTooLong),
                    },
                };
                PlanEntry {
                    source: folder.name.clone(),
                    name: self.located[i].decoded.text.clone(),
                    encoding: self.located[i].decoded.encoding,
                    decision,
                }
            })
            .collect()
    }
}

/// Each node's target folder and, for system folders, its role.
struct Placement {
    target_of: Vec<Option<usize>>,
    role_of: Vec<Option<Role>>,
}

/// Folders sorted by raw name, each name once: a folder listed twice gets the union of its
/// attributes and its delimiter if either listing gave one, so LIST order cannot matter.
fn merge(folders: &[ListedFolder]) -> Vec<ListedFolder> {
    let mut by_name: BTreeMap<&MailboxName, ListedFolder> = BTreeMap::new();
    for folder in folders {
        by_name
            .entry(&folder.name)
            .and_modify(|seen| {
                seen.delimiter = seen.delimiter.max(folder.delimiter);
                seen.attributes.extend(folder.attributes.iter().cloned());
            })
            .or_insert_with(|| folder.clone());
    }
    by_name
        .into_values()
        .map(|mut folder| {
            folder.attributes.sort();
            folder.attributes.dedup();
            folder
        })
        .collect()
}

fn pre_decision(folder: &ListedFolder, loc: &Located, options: &PlanOptions) -> Pre {
    if !loc.personal {
        return Pre::Other;
    }
    let shown = loc.own_path.join("/");
    if let Some(pattern) = options.exclude.iter().find(|p| pattern_matches(p, &shown)) {
        return Pre::Excluded(pattern.clone());
    }
    if !folder.is_selectable() {
        return Pre::Noselect;
    }
    match candidate_role(folder, loc) {
        Some((role, _)) if role.is_virtual() && options.skip_virtual => Pre::Virtual(role),
        _ => Pre::Copy,
    }
}

/// The role a folder claims and on what evidence (see [`FolderPlan`] for the order).
fn candidate_role(folder: &ListedFolder, loc: &Located) -> Option<(Role, Evidence)> {
    let is_inbox = |s: &String| s.eq_ignore_ascii_case("INBOX");
    if loc.own_path.len() == 1 && is_inbox(&loc.own_path[0]) {
        return Some((Role::Inbox, Evidence::InboxName));
    }
    if let Some(found) = role_from_attributes(&folder.attributes) {
        return Some(found);
    }
    // Names only count where system folders live: the top level (after lifting provider
    // containers) or directly under INBOX. "Projects/Sent" is the user's own folder.
    let top = loc.path.len() == 1 || (loc.own_path.len() == 2 && is_inbox(&loc.own_path[0]));
    if !top {
        return None;
    }
    match role_for_name(loc.path.last()?) {
        Some(Role::Inbox) | None => None,
        Some(role) => Some((role, Evidence::Name)),
    }
}

/// Reserves the target's system folders and its `\Noselect` folders, and returns the folder
/// found for each role (only those the rules allow writing into as named).
fn reserve_target_listing(targets: &mut TargetTree, target: &TargetListing) -> BTreeMap<Role, usize> {
    let folders = merge(&target.folders);
    let namespaces = Namespaces::new(&target.personal_prefix, &[]);
    let located: Vec<Located> = folders.iter().map(|f| locate(f, &namespaces, &[])).collect();
    let mut best: BTreeMap<Role, (Evidence, usize, usize)> = BTreeMap::new();
    for (i, (folder, loc)) in folders.iter().zip(&located).enumerate() {
        if !folder.is_selectable() {
            targets.reserve(&loc.path);
            continue;
        }
        let Some((role, evidence)) = candidate_role(folder, loc) else {
            continue;
        };
        if role.is_virtual() {
            // Never write into a view such as Gmail's All Mail.
            targets.reserve(&loc.path);
            continue;
        }
        if !targets.is_valid(&loc.path) {
            continue;
        }
        let key = (evidence, loc.path.len(), i);
        if best.get(&role).is_none_or(|b| key < *b) {
            best.insert(role, key);
        }
    }
    // One folder serves one role, even if a hostile listing names it twice in two cases on
    // a target that ignores case.
    let mut used = BTreeSet::new();
    best.into_iter()
        .filter_map(|(role, (_, _, i))| targets.reserve(&located[i].path).map(|node| (role, node)))
        .filter(|&(_, node)| used.insert(node))
        .collect()
}
