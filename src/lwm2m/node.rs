//! The LwM2M data model (OMA-TS-LightweightM2M_Core §6.1): paths, typed
//! values, the node tree (Object → Object Instance → Resource / Multiple
//! Resource → Resource Instance) and the flat record list used by SenML and
//! composite operations, with conversions between the two.
//!
//! Pure data: no wire format lives here (see `lwm2m::format`), and nothing
//! here knows object definitions (see `lwm2m::objects`).

use std::fmt;
use std::str::FromStr;

// ---------------------------------------------------------------------------
// Path
// ---------------------------------------------------------------------------

/// An LwM2M path: `/`, `/3`, `/3/0`, `/3/0/1` or `/3/0/6/1` (Core §6.1).
///
/// Identifiers are 16-bit; 65535 (`MAX_ID`, reserved by the spec) is
/// accepted on purpose so that a test tool can send it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Path {
    len: u8,
    ids: [u16; 4],
}

/// Why a text could not be read as a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// A segment is not a decimal integer in 0..=65535.
    #[error("invalid path {text:?}: segment {segment} ({value:?}) is not an identifier 0-65535")]
    BadSegment {
        /// The whole text.
        text: String,
        /// 1-based index of the bad segment.
        segment: usize,
        /// The offending segment.
        value: String,
    },
    /// More than four identifiers.
    #[error("invalid path {text:?}: more than 4 identifiers")]
    TooLong {
        /// The whole text.
        text: String,
    },
}

/// The depth of a [`Path`]: what kind of node it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `/`
    Root,
    /// `/3`
    Object,
    /// `/3/0`
    ObjectInstance,
    /// `/3/0/1`
    Resource,
    /// `/3/0/6/1`
    ResourceInstance,
}

impl Path {
    /// The root path `/`.
    pub const ROOT: Path = Path {
        len: 0,
        ids: [0; 4],
    };

    /// A path from up to four identifiers; `None` if more are given.
    pub fn new(ids: &[u16]) -> Option<Path> {
        let mut path = Path::ROOT;
        for &id in ids {
            path = path.child(id)?;
        }
        Some(path)
    }

    /// The identifiers, outermost first.
    pub fn ids(&self) -> &[u16] {
        &self.ids[..usize::from(self.len)]
    }

    /// Number of identifiers (0 for the root).
    pub fn depth(&self) -> usize {
        usize::from(self.len)
    }

    /// True for `/`.
    pub fn is_root(&self) -> bool {
        self.len == 0
    }

    /// What kind of node this path names.
    pub fn level(&self) -> Level {
        match self.len {
            0 => Level::Root,
            1 => Level::Object,
            2 => Level::ObjectInstance,
            3 => Level::Resource,
            _ => Level::ResourceInstance,
        }
    }

    /// The Object ID, if present.
    pub fn object(&self) -> Option<u16> {
        self.ids().first().copied()
    }

    /// The Object Instance ID, if present.
    pub fn instance(&self) -> Option<u16> {
        self.ids().get(1).copied()
    }

    /// The Resource ID, if present.
    pub fn resource(&self) -> Option<u16> {
        self.ids().get(2).copied()
    }

    /// The Resource Instance ID, if present.
    pub fn resource_instance(&self) -> Option<u16> {
        self.ids().get(3).copied()
    }

    /// This path extended by one identifier; `None` below resource-instance level.
    pub fn child(&self, id: u16) -> Option<Path> {
        let mut out = *self;
        let slot = out.ids.get_mut(usize::from(self.len))?;
        *slot = id;
        out.len += 1;
        Some(out)
    }

    /// This path without its last identifier; `None` for the root.
    pub fn parent(&self) -> Option<Path> {
        let len = self.len.checked_sub(1)?;
        let mut out = *self;
        out.ids[usize::from(len)] = 0;
        out.len = len;
        Some(out)
    }

    /// The first `len` identifiers of this path.
    pub fn truncate(&self, len: usize) -> Path {
        Path::new(&self.ids()[..len.min(self.depth())]).unwrap_or(Path::ROOT)
    }

    /// True when `prefix` is this path or one of its ancestors.
    pub fn starts_with(&self, prefix: &Path) -> bool {
        self.ids().starts_with(prefix.ids())
    }

    /// This path followed by `rest`; `None` if that is longer than 4.
    pub fn join(&self, rest: &Path) -> Option<Path> {
        let mut out = *self;
        for &id in rest.ids() {
            out = out.child(id)?;
        }
        Some(out)
    }

    /// The longest common prefix of two paths.
    pub fn common_prefix(&self, other: &Path) -> Path {
        let n = self
            .ids()
            .iter()
            .zip(other.ids())
            .take_while(|(a, b)| a == b)
            .count();
        self.truncate(n)
    }
}

impl FromStr for Path {
    type Err = PathError;

    /// Reads `/3/0/1`, `3/0/1` or `/`. Empty segments (`/3//1`, `/3/`) are errors.
    fn from_str(text: &str) -> Result<Path, PathError> {
        let body = text.strip_prefix('/').unwrap_or(text);
        let mut path = Path::ROOT;
        if body.is_empty() {
            return Ok(path);
        }
        for (i, segment) in body.split('/').enumerate() {
            let bad = || PathError::BadSegment {
                text: text.to_owned(),
                segment: i + 1,
                value: segment.to_owned(),
            };
            if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let id: u16 = segment.parse().map_err(|_| bad())?;
            path = path.child(id).ok_or_else(|| PathError::TooLong {
                text: text.to_owned(),
            })?;
        }
        Ok(path)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str("/");
        }
        for id in self.ids() {
            write!(f, "/{id}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Path({self})")
    }
}

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

/// The data types of Core Appendix C.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    /// UTF-8 string.
    String,
    /// Signed 64-bit integer.
    Integer,
    /// Unsigned 64-bit integer (LwM2M 1.1).
    UnsignedInteger,
    /// IEEE-754 float.
    Float,
    /// Boolean.
    Boolean,
    /// Raw bytes.
    Opaque,
    /// Seconds since the Unix epoch, signed.
    Time,
    /// Object link `ObjectID:InstanceID`.
    ObjectLink,
    /// CoRE link format text (RFC 6690).
    CoreLink,
    /// No value (executable resources).
    None,
}

impl ResourceType {
    /// The type name as in OMA object definitions (`Unsigned Integer`, `Objlnk`, …).
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::String => "String",
            ResourceType::Integer => "Integer",
            ResourceType::UnsignedInteger => "Unsigned Integer",
            ResourceType::Float => "Float",
            ResourceType::Boolean => "Boolean",
            ResourceType::Opaque => "Opaque",
            ResourceType::Time => "Time",
            ResourceType::ObjectLink => "Objlnk",
            ResourceType::CoreLink => "Corelnk",
            ResourceType::None => "none",
        }
    }

    /// Reads a type name as written in OMA XML (`<Type>`), case-insensitively.
    /// An empty name is [`ResourceType::None`].
    pub fn from_name(name: &str) -> Option<ResourceType> {
        let n = name.trim().to_ascii_lowercase().replace([' ', '_'], "");
        Some(match n.as_str() {
            "string" => ResourceType::String,
            "integer" | "int" => ResourceType::Integer,
            "unsignedinteger" | "uint" | "unsigned" => ResourceType::UnsignedInteger,
            "float" | "double" => ResourceType::Float,
            "boolean" | "bool" => ResourceType::Boolean,
            "opaque" => ResourceType::Opaque,
            "time" => ResourceType::Time,
            "objlnk" | "objectlink" => ResourceType::ObjectLink,
            "corelnk" | "corelink" => ResourceType::CoreLink,
            "" | "none" => ResourceType::None,
            _ => return None,
        })
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A typed Resource (Instance) value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Signed integer.
    Integer(i64),
    /// Unsigned integer.
    UnsignedInteger(u64),
    /// Float.
    Float(f64),
    /// Boolean.
    Boolean(bool),
    /// UTF-8 string.
    String(String),
    /// Raw bytes.
    Opaque(Vec<u8>),
    /// Unix time in seconds.
    Time(i64),
    /// Object link (Object ID, Object Instance ID).
    ObjectLink(u16, u16),
    /// CoRE link format text.
    CoreLink(String),
    /// No value (an executable resource, or a SenML-ETCH record that deletes).
    None,
}

impl Value {
    /// The [`ResourceType`] of this value.
    pub fn resource_type(&self) -> ResourceType {
        match self {
            Value::Integer(_) => ResourceType::Integer,
            Value::UnsignedInteger(_) => ResourceType::UnsignedInteger,
            Value::Float(_) => ResourceType::Float,
            Value::Boolean(_) => ResourceType::Boolean,
            Value::String(_) => ResourceType::String,
            Value::Opaque(_) => ResourceType::Opaque,
            Value::Time(_) => ResourceType::Time,
            Value::ObjectLink(..) => ResourceType::ObjectLink,
            Value::CoreLink(_) => ResourceType::CoreLink,
            Value::None => ResourceType::None,
        }
    }
}

impl fmt::Display for Value {
    /// Readable form: `42`, `1.5`, `true`, `"text"`, `h'0102'`, `3:0`,
    /// `1367491215 (2013-05-02T10:40:15Z)`, `<core link>`, `(none)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Integer(v) => write!(f, "{v}"),
            Value::UnsignedInteger(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v:?}"),
            Value::Boolean(v) => write!(f, "{v}"),
            Value::String(v) => write!(f, "{v:?}"),
            Value::Opaque(v) => write!(f, "h'{}'", hex::encode(v)),
            Value::Time(v) => write!(f, "{v} ({})", utc_text(*v)),
            Value::ObjectLink(o, i) => write!(f, "{o}:{i}"),
            Value::CoreLink(v) => write!(f, "<{v}>"),
            Value::None => f.write_str("(none)"),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time (proleptic Gregorian, any i64).
pub fn utc_text(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (H. Hinnant), in i128 so that no input overflows.
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

// ---------------------------------------------------------------------------
// Tree
// ---------------------------------------------------------------------------

/// An Object and its instances.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object {
    /// Object ID.
    pub id: u16,
    /// Instances in wire order.
    pub instances: Vec<ObjectInstance>,
}

/// An Object Instance and its resources.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObjectInstance {
    /// Object Instance ID.
    pub id: u16,
    /// Resources in wire order.
    pub resources: Vec<ResourceNode>,
}

/// A single-instance Resource with its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Resource ID.
    pub id: u16,
    /// The value.
    pub value: Value,
    /// True when the wire did not say the type and no definition was known,
    /// so `value` is a best guess.
    pub guessed: bool,
}

/// A Multiple Resource and its instances.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MultipleResource {
    /// Resource ID.
    pub id: u16,
    /// Resource Instances in wire order.
    pub instances: Vec<ResourceInstance>,
}

/// One instance of a Multiple Resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceInstance {
    /// Resource Instance ID.
    pub id: u16,
    /// The value.
    pub value: Value,
    /// See [`Resource::guessed`].
    pub guessed: bool,
}

/// What an Object Instance contains.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceNode {
    /// A single-instance Resource.
    Single(Resource),
    /// A Multiple Resource.
    Multiple(MultipleResource),
}

/// Any node of the tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// An Object.
    Object(Object),
    /// An Object Instance.
    ObjectInstance(ObjectInstance),
    /// A single Resource.
    Resource(Resource),
    /// A Multiple Resource.
    MultipleResource(MultipleResource),
    /// A Resource Instance.
    ResourceInstance(ResourceInstance),
}

impl Resource {
    /// A resource with a known-type value.
    pub fn new(id: u16, value: Value) -> Resource {
        Resource {
            id,
            value,
            guessed: false,
        }
    }
}

impl ResourceInstance {
    /// A resource instance with a known-type value.
    pub fn new(id: u16, value: Value) -> ResourceInstance {
        ResourceInstance {
            id,
            value,
            guessed: false,
        }
    }
}

impl ResourceNode {
    /// The Resource ID.
    pub fn id(&self) -> u16 {
        match self {
            ResourceNode::Single(r) => r.id,
            ResourceNode::Multiple(r) => r.id,
        }
    }
}

impl From<ResourceNode> for Node {
    fn from(r: ResourceNode) -> Node {
        match r {
            ResourceNode::Single(r) => Node::Resource(r),
            ResourceNode::Multiple(r) => Node::MultipleResource(r),
        }
    }
}

impl Node {
    /// The identifier of this node within its parent.
    pub fn id(&self) -> u16 {
        match self {
            Node::Object(n) => n.id,
            Node::ObjectInstance(n) => n.id,
            Node::Resource(n) => n.id,
            Node::MultipleResource(n) => n.id,
            Node::ResourceInstance(n) => n.id,
        }
    }

    /// The level this node lives at.
    pub fn level(&self) -> Level {
        match self {
            Node::Object(_) => Level::Object,
            Node::ObjectInstance(_) => Level::ObjectInstance,
            Node::Resource(_) | Node::MultipleResource(_) => Level::Resource,
            Node::ResourceInstance(_) => Level::ResourceInstance,
        }
    }
}

// ---------------------------------------------------------------------------
// Flat records and conversions
// ---------------------------------------------------------------------------

/// One flat entry: a value at an absolute path, optionally timestamped.
/// SenML, LwM2M JSON/CBOR and composite operations carry these.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Absolute path of the Resource or Resource Instance (any level for
    /// value-less SenML-ETCH records).
    pub path: Path,
    /// The value ([`Value::None`] when the record carries none).
    pub value: Value,
    /// Resolved time (base time + time), in seconds, when present.
    pub time: Option<f64>,
    /// See [`Resource::guessed`].
    pub guessed: bool,
}

impl Record {
    /// A record without time.
    pub fn new(path: Path, value: Value) -> Record {
        Record {
            path,
            value,
            time: None,
            guessed: false,
        }
    }
}

/// Why records could not be arranged as a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// A record's path is not below the requested parent.
    #[error("record {path} is not below {parent}")]
    OutsideParent {
        /// The record path.
        path: Path,
        /// The parent asked for.
        parent: Path,
    },
    /// A value sits at an Object or Object Instance path, or a node is
    /// both single and multiple.
    #[error("record {path} conflicts with the tree shape: {reason}")]
    Shape {
        /// The record path.
        path: Path,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Flattens `nodes` (the children of `parent`) into records in tree order.
/// Nodes that do not fit below `parent` (too deep) are skipped.
pub fn records_from_nodes(parent: &Path, nodes: &[Node]) -> Vec<Record> {
    let mut out = Vec::new();
    for node in nodes {
        flatten(parent, node, &mut out);
    }
    out
}

fn flatten(parent: &Path, node: &Node, out: &mut Vec<Record>) {
    let Some(path) = parent.child(node.id()) else {
        return;
    };
    let leaf = |value: &Value, guessed: bool| Record {
        path,
        value: value.clone(),
        time: None,
        guessed,
    };
    match node {
        Node::Object(o) => {
            for i in &o.instances {
                flatten(&path, &Node::ObjectInstance(i.clone()), out);
            }
        }
        Node::ObjectInstance(i) => {
            for r in &i.resources {
                flatten(&path, &Node::from(r.clone()), out);
            }
        }
        Node::MultipleResource(m) => {
            for ri in &m.instances {
                flatten(&path, &Node::ResourceInstance(ri.clone()), out);
            }
        }
        Node::Resource(r) => out.push(leaf(&r.value, r.guessed)),
        Node::ResourceInstance(r) => out.push(leaf(&r.value, r.guessed)),
    }
}

/// Arranges records into the children of `parent` (`Path::ROOT` gives
/// Objects). Order of first appearance is kept; a record with
/// [`Value::None`] above resource level creates an empty container; a
/// resource-level record whose value is [`Value::None`] is a Resource with
/// no value. A record deeper than resource level makes its resource Multiple.
/// Time stamps are dropped (the tree has none).
pub fn nodes_from_records(parent: &Path, records: &[Record]) -> Result<Vec<Node>, TreeError> {
    let mut objects: Vec<Object> = Vec::new();
    for rec in records {
        if !rec.path.starts_with(parent) {
            return Err(TreeError::OutsideParent {
                path: rec.path,
                parent: *parent,
            });
        }
        insert(&mut objects, rec)?;
    }
    // Cut the full tree down to the children of `parent`.
    let mut nodes: Vec<Node> = objects.into_iter().map(Node::Object).collect();
    for &id in parent.ids() {
        nodes = nodes
            .into_iter()
            .filter(|n| n.id() == id)
            .flat_map(children)
            .collect();
    }
    Ok(nodes)
}

fn children(node: Node) -> Vec<Node> {
    match node {
        Node::Object(o) => o.instances.into_iter().map(Node::ObjectInstance).collect(),
        Node::ObjectInstance(i) => i.resources.into_iter().map(Node::from).collect(),
        Node::MultipleResource(m) => m
            .instances
            .into_iter()
            .map(Node::ResourceInstance)
            .collect(),
        Node::Resource(_) | Node::ResourceInstance(_) => Vec::new(),
    }
}

fn find_or_push<T>(
    items: &mut Vec<T>,
    pred: impl Fn(&T) -> bool,
    make: impl FnOnce() -> T,
) -> &mut T {
    let idx = match items.iter().position(pred) {
        Some(i) => i,
        None => {
            items.push(make());
            items.len() - 1
        }
    };
    &mut items[idx]
}

fn insert(objects: &mut Vec<Object>, rec: &Record) -> Result<(), TreeError> {
    let shape = |reason| TreeError::Shape {
        path: rec.path,
        reason,
    };
    let ids = rec.path.ids();
    if ids.len() < 3 && rec.value != Value::None {
        return Err(shape("a value needs a Resource or Resource Instance path"));
    }
    let Some(&oid) = ids.first() else {
        return Ok(());
    };
    let obj = find_or_push(
        objects,
        |o| o.id == oid,
        || Object {
            id: oid,
            instances: Vec::new(),
        },
    );
    let Some(&iid) = ids.get(1) else {
        return Ok(());
    };
    let inst = find_or_push(
        &mut obj.instances,
        |i| i.id == iid,
        || ObjectInstance {
            id: iid,
            resources: Vec::new(),
        },
    );
    let Some(&rid) = ids.get(2) else {
        return Ok(());
    };
    match ids.get(3) {
        None => {
            if inst.resources.iter().any(|r| r.id() == rid) {
                return Err(shape("duplicate Resource"));
            }
            inst.resources.push(ResourceNode::Single(Resource {
                id: rid,
                value: rec.value.clone(),
                guessed: rec.guessed,
            }));
        }
        Some(&riid) => {
            let res = find_or_push(
                &mut inst.resources,
                |r| r.id() == rid,
                || {
                    ResourceNode::Multiple(MultipleResource {
                        id: rid,
                        instances: Vec::new(),
                    })
                },
            );
            let ResourceNode::Multiple(multi) = res else {
                return Err(shape("Resource is both single and multiple"));
            };
            if multi.instances.iter().any(|r| r.id == riid) {
                return Err(shape("duplicate Resource Instance"));
            }
            multi.instances.push(ResourceInstance {
                id: riid,
                value: rec.value.clone(),
                guessed: rec.guessed,
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Path {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_displays_paths() {
        assert_eq!(p("/3/0/1").ids(), &[3, 0, 1]);
        assert_eq!(p("3/0").to_string(), "/3/0");
        assert_eq!(p("/").to_string(), "/");
        assert_eq!(p("").level(), Level::Root);
        assert_eq!(p("/3/0/6/1").resource_instance(), Some(1));
        assert_eq!(p("/65535").object(), Some(65535));
    }

    #[test]
    fn rejects_bad_path_text() {
        for bad in [
            "/3//1",
            "/3/",
            "/a",
            "/3/0/1/2/3",
            "/65536",
            "/-1",
            "/ 3",
            "//",
        ] {
            assert!(bad.parse::<Path>().is_err(), "{bad}");
        }
        let e = "/3/x".parse::<Path>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid path \"/3/x\": segment 2 (\"x\") is not an identifier 0-65535"
        );
    }

    #[test]
    fn path_relations() {
        assert!(p("/3/0/1").starts_with(&p("/3")));
        assert!(!p("/3").starts_with(&p("/3/0")));
        assert_eq!(p("/3/0/1").parent(), Some(p("/3/0")));
        assert_eq!(p("/3/0/1").common_prefix(&p("/3/1")), p("/3"));
        assert_eq!(p("/3").join(&p("/0/1")), Some(p("/3/0/1")));
        assert_eq!(p("/3/0/1/2").child(1), None);
    }

    #[test]
    fn renders_time_as_utc() {
        assert_eq!(utc_text(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_text(1_367_491_215), "2013-05-02T10:40:15Z");
        assert_eq!(utc_text(-1), "1969-12-31T23:59:59Z");
        let _ = utc_text(i64::MIN);
        let _ = utc_text(i64::MAX);
    }

    #[test]
    fn records_and_tree_round_trip() {
        let records = vec![
            Record::new(p("/3/0/0"), Value::String("Anjay".into())),
            Record::new(p("/3/0/6/0"), Value::Integer(1)),
            Record::new(p("/3/0/6/1"), Value::Integer(5)),
            Record::new(p("/1/1/1"), Value::Integer(86400)),
        ];
        let tree = nodes_from_records(&Path::ROOT, &records).unwrap();
        assert_eq!(tree.len(), 2);
        assert_eq!(records_from_nodes(&Path::ROOT, &tree), records);
        let under = nodes_from_records(&p("/3/0"), &records[..3]).unwrap();
        assert_eq!(under.len(), 2);
        assert_eq!(records_from_nodes(&p("/3/0"), &under), records[..3]);
    }

    #[test]
    fn tree_rejects_inconsistent_records() {
        let bad = [
            vec![Record::new(p("/3/0"), Value::Integer(1))],
            vec![
                Record::new(p("/3/0/1"), Value::Integer(1)),
                Record::new(p("/3/0/1/0"), Value::Integer(1)),
            ],
            vec![
                Record::new(p("/3/0/1"), Value::Integer(1)),
                Record::new(p("/3/0/1"), Value::Integer(2)),
            ],
        ];
        for records in bad {
            assert!(nodes_from_records(&Path::ROOT, &records).is_err());
        }
        let outside = [Record::new(p("/4/0/1"), Value::Integer(1))];
        assert!(nodes_from_records(&p("/3"), &outside).is_err());
    }
}
