//! Object and resource definitions (OMA LwM2M Object Registry): names,
//! instance multiplicity, mandatory flags, operations and data types.
//!
//! [`Registry::builtin`] knows the core objects (0–7, 9–11, 16, 19, 21) and
//! Temperature (3303); [`Registry::load_dir`] / [`Registry::load_xml`] add
//! more from OMA DDF XML files at run time. Payload decoders use the
//! registry to type values that the wire leaves ambiguous (TLV, plain text)
//! and renderers use it for names. No I/O except `load_dir`/`load_file`.

mod builtin;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::lwm2m::node::ResourceType;

/// Allowed operations on a resource (`R`, `W`, `RW`, `E`, or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Operations {
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub execute: bool,
}

impl Operations {
    /// Reads `R`, `W`, `RW`, `E` or an empty text (case-insensitive);
    /// `None` for anything else.
    pub fn parse(text: &str) -> Option<Operations> {
        let mut ops = Operations::default();
        for c in text.trim().chars() {
            match c.to_ascii_uppercase() {
                'R' => ops.read = true,
                'W' => ops.write = true,
                'E' => ops.execute = true,
                _ => return None,
            }
        }
        Some(ops)
    }
}

impl fmt::Display for Operations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (on, c) in [(self.read, "R"), (self.write, "W"), (self.execute, "E")] {
            if on {
                f.write_str(c)?;
            }
        }
        Ok(())
    }
}

/// One resource of an object definition.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceDef {
    /// Resource ID.
    pub id: u16,
    /// Name, e.g. `Manufacturer`.
    pub name: String,
    /// Allowed operations.
    pub operations: Operations,
    /// Multiple-instance resource.
    pub multiple: bool,
    /// Mandatory resource.
    pub mandatory: bool,
    /// Data type ([`ResourceType::None`] for executables).
    pub kind: ResourceType,
}

/// One object definition.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDef {
    /// Object ID.
    pub id: u16,
    /// Name, e.g. `Device`.
    pub name: String,
    /// Object version (`1.0` when the definition does not say).
    pub version: String,
    /// Multiple-instance object.
    pub multiple: bool,
    /// Mandatory object.
    pub mandatory: bool,
    /// Resources by ID.
    pub resources: BTreeMap<u16, ResourceDef>,
}

/// Why an object definition file could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {reason}")]
pub struct LoadError {
    /// File name (or other source label).
    pub source_name: String,
    /// What is wrong, naming the element.
    pub reason: String,
}

/// The object definitions of one server, shared by its records and its
/// scripts (`load_objects` adds to them): two servers in one process each
/// have their own.
#[derive(Clone, Debug)]
pub struct Objects(Arc<RwLock<Registry>>);

impl Default for Objects {
    fn default() -> Self {
        Objects::new(Registry::builtin())
    }
}

impl Objects {
    /// A handle on `registry`.
    pub fn new(registry: Registry) -> Self {
        Objects(Arc::new(RwLock::new(registry)))
    }

    /// The definitions, for reading.
    pub fn read(&self) -> RwLockReadGuard<'_, Registry> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The definitions, for `load_objects`.
    pub fn write(&self) -> RwLockWriteGuard<'_, Registry> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// A set of object definitions, looked up by Object ID.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    objects: BTreeMap<u16, ObjectDef>,
}

impl Registry {
    /// A registry with no definitions.
    pub fn empty() -> Registry {
        Registry::default()
    }

    /// The built-in definitions (see the module docs).
    pub fn builtin() -> Registry {
        let mut reg = Registry::empty();
        for def in builtin::objects() {
            reg.insert(def);
        }
        reg
    }

    /// Adds or replaces one definition.
    pub fn insert(&mut self, def: ObjectDef) {
        self.objects.insert(def.id, def);
    }

    /// The definition of an object.
    pub fn object(&self, id: u16) -> Option<&ObjectDef> {
        self.objects.get(&id)
    }

    /// The definition of a resource.
    pub fn resource(&self, object: u16, resource: u16) -> Option<&ResourceDef> {
        self.objects.get(&object)?.resources.get(&resource)
    }

    /// All definitions, by Object ID.
    pub fn objects(&self) -> impl Iterator<Item = &ObjectDef> {
        self.objects.values()
    }

    /// Parses OMA DDF XML text (`<LWM2M><Object>…`) and adds every object in
    /// it; returns the IDs added. `source_name` labels errors.
    pub fn load_xml(&mut self, xml: &str, source_name: &str) -> Result<Vec<u16>, LoadError> {
        let defs = parse_xml(xml).map_err(|reason| LoadError {
            source_name: source_name.to_owned(),
            reason,
        })?;
        let ids = defs.iter().map(|d| d.id).collect();
        for def in defs {
            self.insert(def);
        }
        Ok(ids)
    }

    /// Loads one XML file.
    pub fn load_file(&mut self, file: &FsPath) -> Result<Vec<u16>, LoadError> {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(file).map_err(|e| LoadError {
            source_name: name.clone(),
            reason: format!("cannot read: {e}"),
        })?;
        self.load_xml(&text, &name)
    }

    /// Loads every `*.xml` file of a directory (not recursive), in name
    /// order. Stops at the first bad file; definitions from earlier files
    /// stay loaded.
    pub fn load_dir(&mut self, dir: &FsPath) -> Result<Vec<u16>, LoadError> {
        let err = |reason: String| LoadError {
            source_name: dir.display().to_string(),
            reason,
        };
        let entries = std::fs::read_dir(dir).map_err(|e| err(format!("cannot list: {e}")))?;
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| err(format!("cannot list: {e}")))?.path();
            let is_xml = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("xml"));
            if is_xml && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut ids = Vec::new();
        for file in files {
            ids.extend(self.load_file(&file)?);
        }
        Ok(ids)
    }

    /// `Name` of an object, if known.
    pub fn object_name(&self, id: u16) -> Option<&str> {
        self.object(id).map(|o| o.name.as_str())
    }

    /// `Name` of a resource, if known.
    pub fn resource_name(&self, object: u16, resource: u16) -> Option<&str> {
        self.resource(object, resource).map(|r| r.name.as_str())
    }
}

fn child_text<'a>(node: roxmltree::Node<'a, '_>, tag: &str) -> Option<&'a str> {
    node.children()
        .find(|c| c.has_tag_name(tag))
        .map(|c| c.text().unwrap_or("").trim())
}

fn required<'a>(node: roxmltree::Node<'a, '_>, tag: &str, what: &str) -> Result<&'a str, String> {
    child_text(node, tag).ok_or_else(|| format!("{what}: missing <{tag}>"))
}

fn multiplicity(text: &str, what: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "multiple" => Ok(true),
        "single" => Ok(false),
        _ => Err(format!(
            "{what}: <MultipleInstances> is {text:?}, expected Single or Multiple"
        )),
    }
}

fn mandatory(text: &str, what: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "mandatory" => Ok(true),
        "optional" => Ok(false),
        _ => Err(format!(
            "{what}: <Mandatory> is {text:?}, expected Mandatory or Optional"
        )),
    }
}

fn parse_id(text: &str, what: &str) -> Result<u16, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{what}: ID {text:?} is not an integer 0-65535"))
}

fn parse_xml(xml: &str) -> Result<Vec<ObjectDef>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("not well-formed XML: {e}"))?;
    let objects: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("Object"))
        .collect();
    if objects.is_empty() {
        return Err("no <Object> element".into());
    }
    let mut out = Vec::new();
    for obj in objects {
        let id_text = required(obj, "ObjectID", "<Object>")?;
        let id = parse_id(id_text, "<ObjectID>")?;
        let what = format!("object {id}");
        let mut def = ObjectDef {
            id,
            name: required(obj, "Name", &what)?.to_owned(),
            version: child_text(obj, "ObjectVersion")
                .filter(|v| !v.is_empty())
                .unwrap_or("1.0")
                .to_owned(),
            multiple: multiplicity(required(obj, "MultipleInstances", &what)?, &what)?,
            mandatory: mandatory(required(obj, "Mandatory", &what)?, &what)?,
            resources: BTreeMap::new(),
        };
        let items = obj
            .children()
            .find(|c| c.has_tag_name("Resources"))
            .into_iter()
            .flat_map(|r| r.children().filter(|c| c.has_tag_name("Item")));
        for item in items {
            let pos = doc.text_pos_at(item.range().start);
            let rid_text = item
                .attribute("ID")
                .ok_or_else(|| format!("{what}: <Item> at line {} has no ID", pos.row))?;
            let rid = parse_id(rid_text, &format!("{what}, <Item> at line {}", pos.row))?;
            let rwhat = format!("object {id} resource {rid}");
            let type_text = child_text(item, "Type").unwrap_or("");
            let kind = ResourceType::from_name(type_text)
                .ok_or_else(|| format!("{rwhat}: unknown <Type> {type_text:?}"))?;
            let ops_text = child_text(item, "Operations").unwrap_or("");
            let operations = Operations::parse(ops_text)
                .ok_or_else(|| format!("{rwhat}: bad <Operations> {ops_text:?}"))?;
            let res = ResourceDef {
                id: rid,
                name: required(item, "Name", &rwhat)?.to_owned(),
                operations,
                multiple: multiplicity(required(item, "MultipleInstances", &rwhat)?, &rwhat)?,
                mandatory: mandatory(required(item, "Mandatory", &rwhat)?, &rwhat)?,
                kind,
            };
            if def.resources.insert(rid, res).is_some() {
                return Err(format!("{rwhat}: defined twice"));
            }
        }
        out.push(def);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPERATURE_XML: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<LWM2M xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <Object ObjectType="MODefinition">
    <Name>Test Sensor</Name>
    <Description1>A test object.</Description1>
    <ObjectID>32769</ObjectID>
    <ObjectURN>urn:oma:lwm2m:x:32769</ObjectURN>
    <ObjectVersion>1.1</ObjectVersion>
    <MultipleInstances>Multiple</MultipleInstances>
    <Mandatory>Optional</Mandatory>
    <Resources>
      <Item ID="5700">
        <Name>Sensor Value</Name>
        <Operations>R</Operations>
        <MultipleInstances>Single</MultipleInstances>
        <Mandatory>Mandatory</Mandatory>
        <Type>Float</Type>
        <RangeEnumeration></RangeEnumeration>
        <Units></Units>
        <Description>Last value.</Description>
      </Item>
      <Item ID="5605">
        <Name>Reset</Name>
        <Operations>E</Operations>
        <MultipleInstances>Single</MultipleInstances>
        <Mandatory>Optional</Mandatory>
        <Type></Type>
      </Item>
    </Resources>
  </Object>
</LWM2M>"#;

    #[test]
    fn builtin_knows_core_objects() {
        let reg = Registry::builtin();
        for id in [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 16, 19, 21, 3303] {
            assert!(reg.object(id).is_some(), "object {id}");
        }
        assert_eq!(reg.resource_name(3, 0), Some("Manufacturer"));
        let current_time = reg.resource(3, 13).unwrap();
        assert_eq!(current_time.kind, ResourceType::Time);
        assert_eq!(current_time.operations.to_string(), "RW");
        assert!(reg.resource(3, 6).unwrap().multiple);
        assert_eq!(reg.resource(3303, 5700).unwrap().kind, ResourceType::Float);
    }

    #[test]
    fn loads_oma_xml() {
        let mut reg = Registry::empty();
        assert_eq!(reg.load_xml(TEMPERATURE_XML, "t.xml").unwrap(), [32769]);
        let obj = reg.object(32769).unwrap();
        assert_eq!(obj.name, "Test Sensor");
        assert_eq!(obj.version, "1.1");
        assert!(obj.multiple && !obj.mandatory);
        let reset = reg.resource(32769, 5605).unwrap();
        assert_eq!(reset.kind, ResourceType::None);
        assert!(reset.operations.execute);
    }

    #[test]
    fn load_errors_name_file_and_element() {
        let mut reg = Registry::empty();
        let e = reg.load_xml("<LWM2M><Object>", "a.xml").unwrap_err();
        assert!(
            e.to_string().starts_with("a.xml: not well-formed XML"),
            "{e}"
        );
        let bad_type = TEMPERATURE_XML.replace("<Type>Float</Type>", "<Type>Quaternion</Type>");
        let e = reg.load_xml(&bad_type, "b.xml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "b.xml: object 32769 resource 5700: unknown <Type> \"Quaternion\""
        );
        let no_id = TEMPERATURE_XML.replace("<ObjectID>32769</ObjectID>", "");
        let e = reg.load_xml(&no_id, "c.xml").unwrap_err();
        assert_eq!(e.to_string(), "c.xml: <Object>: missing <ObjectID>");
    }

    #[test]
    fn loads_a_directory() {
        let dir = std::env::temp_dir().join(format!("nsh-objects-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("32769.xml"), TEMPERATURE_XML).unwrap();
        std::fs::write(dir.join("readme.txt"), "not xml").unwrap();
        let mut reg = Registry::empty();
        assert_eq!(reg.load_dir(&dir).unwrap(), [32769]);
        std::fs::write(dir.join("broken.xml"), "<LWM2M>").unwrap();
        let e = reg.load_dir(&dir).unwrap_err();
        assert!(e.source_name.ends_with("broken.xml"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(reg.load_dir(&dir).is_err());
    }
}
