using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;
using static TorchSharp.torch;

namespace TransferSharp.Weights.Pickle;

/// <summary>
/// A weights-only pickle reader (protocols 0–5). It is a plain stack machine that builds data: the
/// only globals it accepts are the few PyTorch needs to describe tensors (see <see cref="Allowed"/>),
/// and it interprets those itself. Any other global — <c>os.system</c>, <c>builtins.eval</c>, a model
/// class — is refused with <see cref="UnsafeCheckpointException"/> the moment the pickle names it, so
/// nothing is ever constructed or called. TorchSharp.PyBridge reads pickles too, but accepts any
/// global; that is why this reader exists (see notes/checkpoints.md).
/// All sizes are checked against the bytes left before allocating, and no step recurses, so a
/// hostile pickle cannot hang, exhaust memory or overflow the stack.
/// </summary>
internal sealed class RestrictedUnpickler
{
    private static readonly Dictionary<(string, string), PyGlobal> Allowed = BuildAllowlist();

    private readonly Stream _stream;
    private readonly long _limit;
    private readonly string _file;
    private readonly Func<object?, long, object?> _persistentLoad;
    private List<object?> _stack = [];
    private readonly Stack<List<object?>> _marks = new(); // Python's metastack: the stacks below each MARK
    private readonly Dictionary<long, object?> _memo = [];
    private long _pos;
    private long _opStart;

    /// <param name="stream">Positioned at the first opcode.</param>
    /// <param name="limit">Bytes the pickle may span at most (what is left of the file or entry).</param>
    /// <param name="file">The file, for messages.</param>
    /// <param name="persistentLoad">Turns a persistent id (and the opcode's offset) into a value.</param>
    public RestrictedUnpickler(Stream stream, long limit, string file, Func<object?, long, object?>? persistentLoad = null)
    {
        _stream = stream;
        _limit = limit;
        _file = file;
        _persistentLoad = persistentLoad ?? ((_, at) => throw Malformed(at, "persistent ids are not expected here"));
    }

    /// <summary>Bytes consumed so far.</summary>
    public long Position => _pos;

    /// <summary>Reads one pickle, up to and including its STOP opcode.</summary>
    public object? Load()
    {
        while (true)
        {
            _opStart = _pos;
            byte op = ReadByte();
            switch (op)
            {
                case 0x80: // PROTO
                    {
                        int proto = ReadByte();
                        if (proto > 5) throw Malformed($"pickle protocol {proto} is not supported (0–5)");
                        break;
                    }
                case 0x95: // FRAME
                    {
                        long frame = (long)ReadUInt64();
                        if (frame < 0 || frame > Remaining) throw Truncated($"a frame of {frame} bytes");
                        break;
                    }
                case 0x2e: // STOP
                    return Pop();
                case 0x28: // MARK
                    _marks.Push(_stack);
                    _stack = [];
                    break;
                case 0x30: // POP
                    if (_stack.Count > 0) _stack.RemoveAt(_stack.Count - 1);
                    else PopMark();
                    break;
                case 0x31: // POP_MARK
                    PopMark();
                    break;
                case 0x32: // DUP
                    Push(Peek());
                    break;

                // ---- scalars
                case 0x4e: Push(null); break; // NONE
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case 0x4a: Push((long)ReadInt32()); break; // BININT
                case 0x4b: Push((long)ReadByte()); break; // BININT1
                case 0x4d: Push((long)ReadUInt16()); break; // BININT2
                case 0x8a: Push(ReadLong(ReadByte())); break; // LONG1
                case 0x8b: // LONG4
                    {
                        int n = ReadInt32();
                        if (n < 0) throw Malformed($"LONG4 with negative length {n}");
                        // No integer of a checkpoint needs more than a few bytes; a huge one only costs time to compare.
                        if (n > 1024) throw Malformed($"LONG4 of {n} bytes (at most 1024 are accepted)");
                        Push(ReadLong(n));
                        break;
                    }
                case 0x47: Push(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8))); break; // BINFLOAT
                case 0x49: Push(ParseTextInt(ReadLine())); break; // INT
                case 0x4c: Push(ParseTextLong(ReadLine())); break; // LONG
                case 0x46: // FLOAT
                    {
                        var text = ReadLine();
                        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) throw Malformed($"FLOAT '{text}'");
                        Push(d);
                        break;
                    }

                // ---- strings and bytes
                case 0x58: Push(DecodeUtf8(ReadBytes(ReadUInt32()))); break; // BINUNICODE
                case 0x8c: Push(DecodeUtf8(ReadBytes(ReadByte()))); break; // SHORT_BINUNICODE
                case 0x8d: Push(DecodeUtf8(ReadBytes(CheckedLength(ReadUInt64())))); break; // BINUNICODE8
                case 0x56: Push(DecodeRawUnicodeEscape(ReadLine())); break; // UNICODE
                case 0x54: // BINSTRING
                    {
                        int n = ReadInt32();
                        if (n < 0) throw Malformed($"BINSTRING with negative length {n}");
                        Push(Encoding.Latin1.GetString(ReadBytes(n)));
                        break;
                    }
                case 0x55: Push(Encoding.Latin1.GetString(ReadBytes(ReadByte()))); break; // SHORT_BINSTRING
                case 0x53: Push(DecodePythonStringLiteral(ReadLine())); break; // STRING
                case 0x42: Push(ReadBytes(ReadUInt32())); break; // BINBYTES
                case 0x43: Push(ReadBytes(ReadByte())); break; // SHORT_BINBYTES
                case 0x8e: Push(ReadBytes(CheckedLength(ReadUInt64()))); break; // BINBYTES8
                case 0x96: Push(ReadBytes(CheckedLength(ReadUInt64()))); break; // BYTEARRAY8
                case 0x97: // NEXT_BUFFER
                case 0x98: // READONLY_BUFFER
                    throw Malformed("out-of-band buffers (pickle protocol 5) are not supported in checkpoints");

                // ---- containers
                case 0x5d: Push(new PyList([])); break; // EMPTY_LIST
                case 0x7d: Push(new PyDict()); break; // EMPTY_DICT
                case 0x29: Push(new PyTuple([])); break; // EMPTY_TUPLE
                case 0x8f: Push(new PyList([])); break; // EMPTY_SET
                case 0x6c: Push(new PyList(PopMark())); break; // LIST
                case 0x74: Push(new PyTuple(PopMark().ToArray())); break; // TUPLE
                case 0x91: Push(new PyList(PopMark())); break; // FROZENSET
                case 0x85: Push(new PyTuple([Pop()])); break; // TUPLE1
                case 0x86: // TUPLE2
                    {
                        var b = Pop();
                        var a = Pop();
                        Push(new PyTuple([a, b]));
                        break;
                    }
                case 0x87: // TUPLE3
                    {
                        var c = Pop();
                        var b = Pop();
                        var a = Pop();
                        Push(new PyTuple([a, b, c]));
                        break;
                    }
                case 0x64: // DICT
                    {
                        var items = PopMark();
                        var dict = new PyDict();
                        SetItems(dict, items);
                        Push(dict);
                        break;
                    }
                case 0x61: // APPEND
                    {
                        var value = Pop();
                        ListOnTop("APPEND").Items.Add(value);
                        break;
                    }
                case 0x65: // APPENDS
                    {
                        var items = PopMark();
                        ListOnTop("APPENDS").Items.AddRange(items);
                        break;
                    }
                case 0x90: // ADDITEMS
                    {
                        var items = PopMark();
                        ListOnTop("ADDITEMS").Items.AddRange(items);
                        break;
                    }
                case 0x73: // SETITEM
                    {
                        var value = Pop();
                        var key = Pop();
                        DictOnTop("SETITEM").Set(key, value);
                        break;
                    }
                case 0x75: // SETITEMS
                    {
                        var items = PopMark();
                        SetItems(DictOnTop("SETITEMS"), items);
                        break;
                    }

                // ---- memo
                case 0x70: Memo(ParseMemoIndex(ReadLine())); break; // PUT
                case 0x71: Memo(ReadByte()); break; // BINPUT
                case 0x72: Memo(ReadUInt32()); break; // LONG_BINPUT
                case 0x94: Memo(_memo.Count); break; // MEMOIZE
                case 0x67: Push(Recall(ParseMemoIndex(ReadLine()))); break; // GET
                case 0x68: Push(Recall(ReadByte())); break; // BINGET
                case 0x6a: Push(Recall(ReadUInt32())); break; // LONG_BINGET

                // ---- globals and object construction: only the allowlist
                case 0x63: // GLOBAL
                    {
                        var module = ReadLine();
                        var name = ReadLine();
                        Push(Resolve(module, name));
                        break;
                    }
                case 0x93: // STACK_GLOBAL
                    {
                        var name = Pop();
                        var module = Pop();
                        if (module is not string m || name is not string n)
                            throw Malformed("STACK_GLOBAL needs two strings (module, name)");
                        Push(Resolve(m, n));
                        break;
                    }
                case 0x69: // INST
                    {
                        var module = ReadLine();
                        var name = ReadLine();
                        var cls = Resolve(module, name);
                        Push(Construct(cls, new PyTuple(PopMark().ToArray())));
                        break;
                    }
                case 0x6f: // OBJ
                    {
                        var items = PopMark();
                        if (items.Count == 0) throw Malformed("OBJ without a class");
                        Push(Construct(items[0], new PyTuple(items.Skip(1).ToArray())));
                        break;
                    }
                case 0x81: // NEWOBJ
                    {
                        var args = Pop();
                        var cls = Pop();
                        Push(Construct(cls, args as PyTuple ?? throw Malformed("NEWOBJ arguments are not a tuple")));
                        break;
                    }
                case 0x92: // NEWOBJ_EX
                    {
                        Pop(); // keyword arguments: none of the allowed classes takes any
                        var args = Pop();
                        var cls = Pop();
                        Push(Construct(cls, args as PyTuple ?? throw Malformed("NEWOBJ_EX arguments are not a tuple")));
                        break;
                    }
                case 0x52: // REDUCE
                    {
                        var args = Pop();
                        var callable = Pop();
                        Push(Call(callable, args as PyTuple ?? throw Malformed("REDUCE arguments are not a tuple")));
                        break;
                    }
                case 0x62: // BUILD
                    {
                        // Sets object state (an OrderedDict's _metadata, a Parameter's attributes). The state
                        // was itself built from allowed data only; we have no use for it.
                        Pop();
                        Peek();
                        break;
                    }
                case 0x82: throw new UnsafeCheckpointException(_file, $"copyreg extension {ReadByte()}"); // EXT1
                case 0x83: throw new UnsafeCheckpointException(_file, $"copyreg extension {ReadUInt16()}"); // EXT2
                case 0x84: throw new UnsafeCheckpointException(_file, $"copyreg extension {ReadInt32()}"); // EXT4

                // ---- persistent ids (tensor storages)
                case 0x50: Push(_persistentLoad(ReadLine(), _opStart)); break; // PERSID
                case 0x51: Push(_persistentLoad(Pop(), _opStart)); break; // BINPERSID

                default:
                    throw Malformed($"unknown pickle opcode 0x{op:x2}: the file is corrupt or not a pickle");
            }
        }
    }

    // ------------------------------------------------------------------ globals

    private PyGlobal Resolve(string module, string name)
    {
        if (Allowed.TryGetValue((module, name), out var g)) return g;
        throw new UnsafeCheckpointException(_file, $"{module}.{name}", $"(at byte {_opStart} of the pickle)");
    }

    private object? Construct(object? cls, PyTuple args)
    {
        if (cls is PyGlobal { Kind: GlobalKind.OrderedDict or GlobalKind.Set }) return Call(cls, args);
        if (cls is PyGlobal g) throw new UnsafeCheckpointException(_file, g.FullName, "It may not be instantiated.");
        throw Malformed("an object is constructed from something that is not a class");
    }

    private object? Call(object? callable, PyTuple args)
    {
        if (callable is not PyGlobal g) throw Malformed($"REDUCE calls a {Describe(callable)}, not a global");
        switch (g.Kind)
        {
            case GlobalKind.OrderedDict:
                {
                    var dict = new PyDict();
                    if (args.Count >= 1 && args[0] is PyList pairs)
                    {
                        foreach (var p in pairs.Items)
                        {
                            var kv = p switch { PyTuple t when t.Count == 2 => t.Items, PyList l when l.Items.Count == 2 => l.Items.ToArray(), _ => null }
                                ?? throw Malformed("OrderedDict items must be pairs");
                            dict.Set(kv[0], kv[1]);
                        }
                    }
                    else if (args.Count > 0 && args[0] is not null) throw Malformed("OrderedDict called with unexpected arguments");
                    return dict;
                }
            case GlobalKind.Set:
                return new PyList(args.Count > 0 && args[0] is PyList l0 ? [.. l0.Items] : []);
            case GlobalKind.RebuildTensor:
                Expect(g, args, 4);
                return RebuildTensor(g, args, dtype: null);
            case GlobalKind.RebuildTensorV2:
                Expect(g, args, 4);
                return RebuildTensor(g, args, dtype: null);
            case GlobalKind.RebuildTensorV3:
                Expect(g, args, 7);
                return RebuildTensor(g, args, dtype: (args[6] as PyGlobal)?.DType ?? throw Malformed($"{g.FullName}: argument 7 is not a dtype"));
            case GlobalKind.RebuildParameter:
            case GlobalKind.RebuildParameterWithState:
                Expect(g, args, 1);
                return args[0] as TensorRef ?? throw Malformed($"{g.FullName}: its data is a {Describe(args[0])}, not a tensor");
            case GlobalKind.RebuildFromTypeV2:
                {
                    Expect(g, args, 3);
                    if (args[0] is not PyGlobal { Kind: GlobalKind.RebuildTensor or GlobalKind.RebuildTensorV2 or GlobalKind.RebuildTensorV3 or GlobalKind.RebuildParameter or GlobalKind.RebuildParameterWithState } inner)
                        throw Malformed($"{g.FullName} rebuilds with a {Describe(args[0])}");
                    if (args[1] is not PyGlobal { Kind: GlobalKind.TensorType })
                        throw Malformed($"{g.FullName} rebuilds a tensor subclass that is not allowed ({Describe(args[1])})");
                    return Call(inner, args[2] as PyTuple ?? throw Malformed($"{g.FullName}: arguments are not a tuple"));
                }
            case GlobalKind.Device:
                Expect(g, args, 1);
                return args.Count > 1 ? $"{args[0]}:{args[1]}" : args[0]?.ToString();
            case GlobalKind.Size:
                return args.Count == 0 ? new PyTuple([]) : args[0] switch
                {
                    PyTuple t => t,
                    PyList l => new PyTuple([.. l.Items]),
                    _ => throw Malformed("torch.Size of something that is not a sequence"),
                };
            case GlobalKind.CodecsEncode:
                {
                    Expect(g, args, 1);
                    if (args[0] is not string s) throw Malformed("_codecs.encode of something that is not a string");
                    var encoding = args.Count > 1 ? args[1] as string : "utf-8";
                    return encoding?.ToLowerInvariant() switch
                    {
                        "latin1" or "latin-1" or "iso-8859-1" => Encoding.Latin1.GetBytes(s),
                        "utf-8" or "utf8" => Encoding.UTF8.GetBytes(s),
                        _ => throw Malformed($"_codecs.encode with encoding '{encoding}'"),
                    };
                }
            default:
                throw Malformed($"{g.FullName} is not callable");
        }
    }

    private void Expect(PyGlobal g, PyTuple args, int min)
    {
        if (args.Count < min) throw Malformed($"{g.FullName} called with {args.Count} arguments, needs at least {min}");
    }

    private TensorRef RebuildTensor(PyGlobal g, PyTuple args, ScalarType? dtype)
    {
        if (args[0] is not StorageRef storage) throw Malformed($"{g.FullName}: argument 1 is a {Describe(args[0])}, not a storage");
        if (args[1] is not long offset || offset < 0) throw Malformed($"{g.FullName}: the storage offset is not a non-negative integer");
        var size = Longs(args[2], g, "size");
        var stride = Longs(args[3], g, "stride");
        if (size.Length != stride.Length) throw Malformed($"{g.FullName}: size has {size.Length} dimensions, stride {stride.Length}");
        return new TensorRef(storage, dtype ?? storage.DType, offset, size, stride);
    }

    private long[] Longs(object? value, PyGlobal g, string what)
    {
        var items = value switch { PyTuple t => t.Items, PyList l => l.Items.ToArray(), _ => throw Malformed($"{g.FullName}: {what} is a {Describe(value)}, not a tuple") };
        if (items.Length > 64) throw Malformed($"{g.FullName}: {what} has {items.Length} dimensions");
        return items.Select(x => x switch
        {
            long v => v,
            BigInteger => throw Malformed($"{g.FullName}: {what} holds an integer beyond 64 bits"),
            _ => throw Malformed($"{g.FullName}: {what} holds a {Describe(x)}, not an integer"),
        }).ToArray();
    }

    private static Dictionary<(string, string), PyGlobal> BuildAllowlist()
    {
        var map = new Dictionary<(string, string), PyGlobal>();
        void Add(string module, string name, GlobalKind kind, ScalarType? dtype = null) => map[(module, name)] = new PyGlobal(module, name, kind, dtype);
        Add("collections", "OrderedDict", GlobalKind.OrderedDict);
        Add("torch._utils", "_rebuild_tensor", GlobalKind.RebuildTensor);
        Add("torch._utils", "_rebuild_tensor_v2", GlobalKind.RebuildTensorV2);
        Add("torch._utils", "_rebuild_tensor_v3", GlobalKind.RebuildTensorV3);
        Add("torch._utils", "_rebuild_parameter", GlobalKind.RebuildParameter);
        Add("torch._utils", "_rebuild_parameter_with_state", GlobalKind.RebuildParameterWithState);
        Add("torch._tensor", "_rebuild_from_type_v2", GlobalKind.RebuildFromTypeV2);
        foreach (var (storage, type) in new[]
        {
            ("FloatStorage", ScalarType.Float32), ("DoubleStorage", ScalarType.Float64), ("HalfStorage", ScalarType.Float16),
            ("BFloat16Storage", ScalarType.BFloat16), ("LongStorage", ScalarType.Int64), ("IntStorage", ScalarType.Int32),
            ("ShortStorage", ScalarType.Int16), ("CharStorage", ScalarType.Int8), ("ByteStorage", ScalarType.Byte),
            ("BoolStorage", ScalarType.Bool), ("UntypedStorage", ScalarType.Byte),
        })
        {
            Add("torch", storage, GlobalKind.StorageType, type);
        }
        Add("torch.storage", "UntypedStorage", GlobalKind.StorageType, ScalarType.Byte);
        foreach (var (name, type) in new[]
        {
            ("float32", ScalarType.Float32), ("float", ScalarType.Float32), ("float64", ScalarType.Float64), ("double", ScalarType.Float64),
            ("float16", ScalarType.Float16), ("half", ScalarType.Float16), ("bfloat16", ScalarType.BFloat16),
            ("int64", ScalarType.Int64), ("long", ScalarType.Int64), ("int32", ScalarType.Int32), ("int", ScalarType.Int32),
            ("int16", ScalarType.Int16), ("short", ScalarType.Int16), ("int8", ScalarType.Int8), ("uint8", ScalarType.Byte),
            ("bool", ScalarType.Bool),
        })
        {
            Add("torch", name, GlobalKind.DType, type);
        }
        Add("torch", "device", GlobalKind.Device);
        Add("torch", "Size", GlobalKind.Size);
        Add("torch", "Tensor", GlobalKind.TensorType);
        Add("torch.nn.parameter", "Parameter", GlobalKind.TensorType);
        Add("_codecs", "encode", GlobalKind.CodecsEncode);
        foreach (var builtins in new[] { "builtins", "__builtin__" })
        {
            Add(builtins, "set", GlobalKind.Set);
            Add(builtins, "frozenset", GlobalKind.Set);
        }
        return map;
    }

    /// <summary>The storage type a persistent id names.</summary>
    internal static ScalarType? StorageDType(object? value) => value is PyGlobal { Kind: GlobalKind.StorageType, DType: { } t } ? t : null;

    // ------------------------------------------------------------------ stack

    private void Push(object? value) => _stack.Add(value);

    private object? Pop()
    {
        if (_stack.Count == 0) throw Malformed("the stack is empty (or only a mark is left)");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    private object? Peek() => _stack.Count > 0 ? _stack[^1] : throw Malformed("the stack is empty");

    private List<object?> PopMark()
    {
        if (_marks.Count == 0) throw Malformed("no mark on the stack");
        var items = _stack;
        _stack = _marks.Pop();
        return items;
    }

    private PyList ListOnTop(string op) => Peek() as PyList ?? throw Malformed($"{op} onto a {Describe(Peek())}, not a list");

    private PyDict DictOnTop(string op) => Peek() as PyDict ?? throw Malformed($"{op} onto a {Describe(Peek())}, not a dict");

    private void SetItems(PyDict dict, List<object?> items)
    {
        if (items.Count % 2 != 0) throw Malformed("an odd number of items for a dict");
        for (int i = 0; i < items.Count; i += 2) dict.Set(items[i], items[i + 1]);
    }

    private void Memo(long index)
    {
        if (index < 0) throw Malformed($"negative memo index {index}");
        _memo[index] = Peek();
    }

    private object? Recall(long index) =>
        _memo.TryGetValue(index, out var v) ? v : throw Malformed($"memo entry {index} is read before it is written");

    // ------------------------------------------------------------------ reading

    private long Remaining => _limit - _pos;

    private byte ReadByte()
    {
        if (_pos >= _limit) throw Truncated("an opcode");
        int b = _stream.ReadByte();
        if (b < 0) throw Truncated("an opcode");
        _pos++;
        return (byte)b;
    }

    private byte[] ReadBytes(long count)
    {
        if (count < 0 || count > Remaining) throw Truncated($"{count} bytes of data");
        var buffer = new byte[count];
        try
        {
            _stream.ReadExactly(buffer);
        }
        catch (EndOfStreamException)
        {
            throw Truncated($"{count} bytes of data");
        }
        _pos += count;
        return buffer;
    }

    private int ReadInt32() => BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4));

    private long ReadUInt32() => BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4));

    private int ReadUInt16() => BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2));

    private ulong ReadUInt64() => BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8));

    private long CheckedLength(ulong n) => n > (ulong)Remaining ? throw Truncated($"{n} bytes of data") : (long)n;

    private object ReadLong(int byteCount)
    {
        if (byteCount == 0) return 0L;
        var bytes = ReadBytes(byteCount);
        var big = new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
        // Boxed here: in `c ? (long)big : big` C# converts the long back to BigInteger, and an int64-sized count read as
        // LONG1 (what pickle writes for values of 2^31 and more) would not be a long.
        return big >= long.MinValue && big <= long.MaxValue ? (object)(long)big : big;
    }

    private string ReadLine()
    {
        const int MaxLine = 1 << 16;
        var sb = new StringBuilder();
        while (true)
        {
            byte b = ReadByte();
            if (b == (byte)'\n') break;
            if (sb.Length >= MaxLine) throw Malformed($"a text argument longer than {MaxLine} bytes");
            sb.Append((char)b);
        }
        var line = sb.ToString();
        return line.EndsWith('\r') ? line[..^1] : line;
    }

    private string DecodeUtf8(byte[] bytes)
    {
        try
        {
            return Strict.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Malformed("a string is not valid UTF-8");
        }
    }

    private static readonly Encoding Strict = new UTF8Encoding(false, true);

    private object ParseTextInt(string text)
    {
        if (text == "00") return false;
        if (text == "01") return true;
        return ParseTextLong(text);
    }

    private object ParseTextLong(string text)
    {
        var t = text.EndsWith('L') ? text[..^1] : text;
        if (long.TryParse(t, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v)) return v;
        if (t.Length <= 4096 && BigInteger.TryParse(t, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var big)) return big;
        throw Malformed($"integer '{(text.Length > 40 ? text[..40] + "…" : text)}'");
    }

    private long ParseMemoIndex(string text) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : throw Malformed($"memo index '{text}'");

    /// <summary>Protocol 0's STRING argument: a Python string literal in quotes.</summary>
    private string DecodePythonStringLiteral(string text)
    {
        if (text.Length < 2 || text[0] != text[^1] || (text[0] != '\'' && text[0] != '"')) throw Malformed("STRING argument is not quoted");
        var body = text[1..^1];
        var sb = new StringBuilder(body.Length);
        for (int i = 0; i < body.Length; i++)
        {
            char c = body[i];
            if (c != '\\' || i + 1 >= body.Length) { sb.Append(c); continue; }
            char e = body[++i];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '0': sb.Append('\0'); break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case 'x':
                    if (i + 2 >= body.Length || !int.TryParse(body.AsSpan(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var x))
                        throw Malformed("bad \\x escape in a STRING");
                    sb.Append((char)x);
                    i += 2;
                    break;
                default: sb.Append('\\').Append(e); break;
            }
        }
        return sb.ToString();
    }

    /// <summary>Protocol 0's UNICODE argument: raw-unicode-escape (only \uXXXX and \UXXXXXXXX are escapes).</summary>
    private string DecodeRawUnicodeEscape(string text)
    {
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '\\' && i + 1 < text.Length && (text[i + 1] == 'u' || text[i + 1] == 'U'))
            {
                int digits = text[i + 1] == 'u' ? 4 : 8;
                if (i + 2 + digits > text.Length || !int.TryParse(text.AsSpan(i + 2, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var cp)
                    || cp < 0 || cp > 0x10FFFF)
                    throw Malformed("bad \\u escape in a UNICODE string");
                sb.Append(char.ConvertFromUtf32(cp));
                i += 1 + digits;
            }
            else sb.Append(text[i]);
        }
        return sb.ToString();
    }

    // ------------------------------------------------------------------ errors

    internal static string Describe(object? v) => v switch
    {
        null => "None",
        bool => "bool",
        long or BigInteger => "int",
        double => "float",
        string => "str",
        byte[] => "bytes",
        PyList => "list",
        PyTuple => "tuple",
        PyDict => "dict",
        PyGlobal g => g.FullName,
        StorageRef => "storage",
        TensorRef => "tensor",
        _ => v.GetType().Name,
    };

    private CheckpointFormatException Malformed(string problem) => Malformed(_opStart, problem);

    private CheckpointFormatException Malformed(long at, string problem) =>
        new(_file, $"the pickle is malformed at byte {at}: {problem}");

    private CheckpointFormatException Truncated(string what) =>
        new(_file, $"the pickle is truncated: it ends at byte {_pos} while reading {what}");
}
