//! The subset of Python's pickle that `torch.save` writes for a `state_dict` (protocols 2–5):
//! containers, numbers, strings, globals, `REDUCE` of the few callables that rebuild a tensor,
//! and persistent ids naming the storages that hold the numbers outside the pickle.
//!
//! Nothing is executed: a global is a name, an unknown `REDUCE` or `BUILD` stays an opaque
//! object, so a hostile file can only fail to read.

use std::collections::HashMap;

/// An element type of a PyTorch storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dtype {
    F32,
    F64,
    F16,
    Bf16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl Dtype {
    /// From a storage class name such as `FloatStorage`.
    fn from_storage_class(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => Self::F32,
            "DoubleStorage" => Self::F64,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::Bf16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }

    pub(crate) fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::Bf16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }

    /// Whether the type holds weights (integer tensors are bookkeeping such as BatchNorm's
    /// `num_batches_tracked`).
    pub(crate) fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F64 | Self::F16 | Self::Bf16)
    }
}

/// A storage named by a persistent id: its bytes live outside the pickle, under `key`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StorageRef {
    pub dtype: Dtype,
    pub key: String,
    /// Elements the storage declares (legacy files need it to find the next storage).
    pub numel: usize,
    /// Elements before this view in its root storage (legacy storage views).
    pub view_offset: usize,
}

/// A tensor: a strided view of a storage.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TensorRef {
    pub storage: StorageRef,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too wide for i64 (the legacy magic number), kept as its bytes.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global {
        module: String,
        name: String,
    },
    Storage(StorageRef),
    Tensor(TensorRef),
    /// Anything else rebuilt by a callable: kept, never run.
    Object {
        callable: Box<Value>,
        args: Box<Value>,
    },
}

impl Value {
    pub(crate) fn as_str(&self) -> Option<&str> {
        if let Self::Str(s) = self {
            Some(s)
        } else {
            None
        }
    }
    fn as_usize(&self) -> Option<usize> {
        if let Self::Int(i) = self {
            usize::try_from(*i).ok()
        } else {
            None
        }
    }
    fn usizes(&self) -> Option<Vec<usize>> {
        match self {
            Self::Tuple(v) | Self::List(v) => v.iter().map(Self::as_usize).collect(),
            _ => None,
        }
    }
}

/// How a persistent id becomes a value: the container format decides.
pub(crate) type PersistentLoad<'a> = dyn FnMut(Value) -> Result<Value, String> + 'a;

/// Reads one pickle from `bytes` at `*pos`, leaving `*pos` just after its `STOP`.
pub(crate) fn read_pickle(bytes: &[u8], pos: &mut usize, persistent: &mut PersistentLoad) -> Result<Value, String> {
    Unpickler { bytes, pos, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), persistent }.run()
}

struct Unpickler<'b, 'p, 'f> {
    bytes: &'b [u8],
    pos: &'p mut usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    persistent: &'p mut PersistentLoad<'f>,
}

impl Unpickler<'_, '_, '_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let start = *self.pos;
        let end = start.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or("the pickle ends early")?;
        *self.pos = end;
        Ok(&self.bytes[start..end])
    }
    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn le<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn len_u32(&mut self) -> Result<usize, String> {
        usize::try_from(u32::from_le_bytes(self.le()?)).map_err(|e| e.to_string())
    }
    fn len_u64(&mut self) -> Result<usize, String> {
        usize::try_from(u64::from_le_bytes(self.le()?)).map_err(|e| e.to_string())
    }
    fn string(&mut self, n: usize) -> Result<String, String> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|e| format!("a pickled string is not UTF-8: {e}"))
    }
    fn line(&mut self) -> Result<String, String> {
        let rest = &self.bytes[*self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or("the pickle ends inside a name")?;
        let s = self.string(n)?;
        *self.pos += 1;
        Ok(s)
    }
    fn pop(&mut self) -> Result<Value, String> {
        self.stack.pop().ok_or_else(|| "the pickle pops an empty stack".into())
    }
    fn top(&mut self) -> Result<&mut Value, String> {
        self.stack.last_mut().ok_or_else(|| "the pickle's stack is empty".into())
    }
    /// Everything pushed since the last MARK.
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self.marks.pop().ok_or("the pickle has no MARK to pop to")?;
        if mark > self.stack.len() {
            return Err("the pickle's MARK lies past its stack".into());
        }
        Ok(self.stack.split_off(mark))
    }
    fn memo_get(&mut self, key: u32) -> Result<(), String> {
        let v = self.memo.get(&key).cloned().ok_or_else(|| format!("the pickle reads memo {key}, never stored"))?;
        self.stack.push(v);
        Ok(())
    }
    fn memo_put(&mut self, key: u32) -> Result<(), String> {
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }
    fn set_items(&mut self, items: Vec<Value>) -> Result<(), String> {
        if !items.len().is_multiple_of(2) {
            return Err("SETITEMS with an odd number of values".into());
        }
        let pairs = {
            let mut it = items.into_iter();
            std::iter::from_fn(move || Some((it.next()?, it.next()?))).collect::<Vec<_>>()
        };
        match self.top()? {
            Value::Dict(d) => d.extend(pairs),
            // Items of an object rebuilt by an unknown callable: not needed.
            Value::Object { .. } => {}
            other => return Err(format!("SETITEMS on {}", kind(other))),
        }
        Ok(())
    }
    fn append(&mut self, items: Vec<Value>) -> Result<(), String> {
        match self.top()? {
            Value::List(l) => l.extend(items),
            Value::Object { .. } => {}
            other => return Err(format!("APPENDS on {}", kind(other))),
        }
        Ok(())
    }

    fn run(mut self) -> Result<Value, String> {
        loop {
            let op = self.byte()?;
            match op {
                0x80 => {
                    let _protocol = self.byte()?;
                }
                0x95 => {
                    let _frame_len = self.len_u64()?;
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(items));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Dict(Vec::new()));
                    self.set_items(items)?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if n > self.stack.len() {
                        return Err("a tuple longer than the stack".into());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items));
                }
                b'q' | b'r' | 0x94 => {
                    let k = match op {
                        b'q' => u32::from(self.byte()?),
                        b'r' => u32::from_le_bytes(self.le()?),
                        // MEMOIZE: the next free index.
                        _ => u32::try_from(self.memo.len()).map_err(|e| e.to_string())?,
                    };
                    self.memo_put(k)?;
                }
                b'h' | b'j' => {
                    let k = if op == b'h' { u32::from(self.byte()?) } else { u32::from_le_bytes(self.le()?) };
                    self.memo_get(k)?;
                }
                b'J' => {
                    let v = i64::from(i32::from_le_bytes(self.le()?));
                    self.stack.push(Value::Int(v));
                }
                b'K' => {
                    let v = i64::from(self.byte()?);
                    self.stack.push(Value::Int(v));
                }
                b'M' => {
                    let v = i64::from(u16::from_le_bytes(self.le()?));
                    self.stack.push(Value::Int(v));
                }
                0x8a => {
                    let n = usize::from(self.byte()?);
                    let raw = self.take(n)?.to_vec();
                    self.stack.push(long(raw));
                }
                0x8b => {
                    let n = self.len_u32()?;
                    let raw = self.take(n)?.to_vec();
                    self.stack.push(long(raw));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le()?);
                    self.stack.push(Value::Float(v));
                }
                b'X' => {
                    let n = self.len_u32()?;
                    let s = self.string(n)?;
                    self.stack.push(Value::Str(s));
                }
                0x8c => {
                    let n = usize::from(self.byte()?);
                    let s = self.string(n)?;
                    self.stack.push(Value::Str(s));
                }
                0x8d => {
                    let n = self.len_u64()?;
                    let s = self.string(n)?;
                    self.stack.push(Value::Str(s));
                }
                // Python 2 byte strings (legacy checkpoints' storage keys are unicode, but be lenient).
                b'T' | b'B' => {
                    let n = self.len_u32()?;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(bytes_or_str(op, b));
                }
                b'U' | b'C' => {
                    let n = usize::from(self.byte()?);
                    let b = self.take(n)?.to_vec();
                    self.stack.push(bytes_or_str(op, b));
                }
                0x8e => {
                    let n = self.len_u64()?;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global { module, name });
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(module), Some(name)) = (module.as_str(), name.as_str()) else {
                        return Err("STACK_GLOBAL without two names".into());
                    };
                    self.stack.push(Value::Global { module: module.into(), name: name.into() });
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = reduce(callable, args)?;
                    self.stack.push(v);
                }
                0x81 => {
                    let args = self.pop()?;
                    let class = self.pop()?;
                    self.stack.push(Value::Object { callable: Box::new(class), args: Box::new(args) });
                }
                // BUILD sets an object's state (e.g. an OrderedDict's `_metadata`): not needed.
                b'b' => {
                    self.pop()?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.set_items(vec![key, value])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = (self.persistent)(pid)?;
                    self.stack.push(v);
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.stack.push(v);
                }
                other => return Err(format!("pickle opcode 0x{other:02x} is not one torch.save writes for weights")),
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Tuple(_) => "a tuple",
        Value::List(_) => "a list",
        Value::Dict(_) => "a dict",
        Value::Tensor(_) => "a tensor",
        _ => "a scalar",
    }
}

fn bytes_or_str(op: u8, b: Vec<u8>) -> Value {
    // BINSTRING/SHORT_BINSTRING are Python 2 `str`: text when it decodes.
    if matches!(op, b'T' | b'U') {
        if let Ok(s) = String::from_utf8(b.clone()) {
            return Value::Str(s);
        }
    }
    Value::Bytes(b)
}

/// A little-endian two's-complement integer (LONG1/LONG4).
fn long(raw: Vec<u8>) -> Value {
    if raw.is_empty() {
        return Value::Int(0);
    }
    if raw.len() > 8 {
        return Value::BigInt(raw);
    }
    let fill = if raw[raw.len() - 1] & 0x80 != 0 { 0xff } else { 0 };
    let mut full = [fill; 8];
    full[..raw.len()].copy_from_slice(&raw);
    Value::Int(i64::from_le_bytes(full))
}

/// `REDUCE`: the callables that rebuild containers and tensors are understood; any other is
/// kept as an opaque object (never called).
fn reduce(callable: Value, args: Value) -> Result<Value, String> {
    let Value::Global { module, name } = &callable else {
        return Ok(Value::Object { callable: Box::new(callable), args: Box::new(args) });
    };
    let items = match &args {
        Value::Tuple(items) => items.as_slice(),
        _ => &[],
    };
    match (module.as_str(), name.as_str()) {
        ("collections", "OrderedDict") if items.is_empty() => Ok(Value::Dict(Vec::new())),
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor" | "_rebuild_tensor_v3") => rebuild_tensor(items),
        // A Parameter: (tensor, requires_grad, hooks…).
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
            items.first().cloned().ok_or_else(|| "a Parameter without its tensor".into())
        }
        // A tensor subclass: (function, type, its args, state).
        ("torch._tensor", "_rebuild_from_type_v2") => match items {
            [func, _ty, inner, ..] => reduce(func.clone(), inner.clone()),
            _ => Err("_rebuild_from_type_v2 with too few arguments".into()),
        },
        _ => Ok(Value::Object { callable: Box::new(callable), args: Box::new(args) }),
    }
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, …)`.
fn rebuild_tensor(items: &[Value]) -> Result<Value, String> {
    let [storage, offset, size, stride, ..] = items else {
        return Err("a tensor rebuilt with too few arguments".into());
    };
    let Value::Storage(storage) = storage else {
        return Err(format!("a tensor whose storage is {}, not a persistent storage", kind(storage)));
    };
    let offset = offset.as_usize().ok_or("a tensor's storage offset is not a count")?;
    let shape = size.usizes().ok_or("a tensor's size is not a tuple of counts")?;
    let stride = stride.usizes().ok_or("a tensor's stride is not a tuple of counts")?;
    if shape.len() != stride.len() {
        return Err(format!("a tensor of {} dimensions with {} strides", shape.len(), stride.len()));
    }
    Ok(Value::Tensor(TensorRef { storage: storage.clone(), offset, shape, stride }))
}

/// A persistent id `('storage', StorageClass, key, location, numel[, view])` as a storage.
pub(crate) fn storage_from_pid(pid: Value) -> Result<Value, String> {
    let Value::Tuple(parts) = pid else { return Err("a persistent id that is not a tuple".into()) };
    let [tag, class, key, _location, numel, rest @ ..] = parts.as_slice() else {
        return Err("a persistent id with too few fields".into());
    };
    if tag.as_str() != Some("storage") {
        return Err(format!("a persistent id of kind {tag:?}, not a storage"));
    }
    let Value::Global { name, .. } = class else { return Err("a storage without its class".into()) };
    let dtype = Dtype::from_storage_class(name).ok_or_else(|| format!("storages of type {name} are not read"))?;
    let key = match key {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        _ => return Err("a storage key that is not a name".into()),
    };
    let numel = numel.as_usize().ok_or("a storage size that is not a count")?;
    // Legacy views: (view key, offset, size) into the root storage.
    let view_offset = match rest.first() {
        Some(Value::Tuple(view)) => view.get(1).and_then(Value::as_usize).ok_or("a storage view without its offset")?,
        _ => 0,
    };
    Ok(Value::Storage(StorageRef { dtype, key, numel, view_offset }))
}
