"""Varied texts for embedding tests: code, prose, unicode, empty, and longer than 512 tokens."""

LONG_TEXT = " ".join(
    f"def handler_{i}(request): return retry(upload, attempts={i % 7}, backoff=0.{i})"
    for i in range(120)
)

TEXTS = [
    "",
    "hello",
    "where do we retry failed uploads?",
    "def parse_config(path):\n    with open(path) as fh:\n        return json.load(fh)\n",
    "async function fetchUser(id) { const res = await fetch(`/api/users/${id}`); return res; }",
    'fn main() { let v: Vec<u32> = (0..10).map(|x| x * x).collect(); println!("{:?}", v); }',
    "SELECT u.id, COUNT(o.id) FROM users u LEFT JOIN orders o ON o.user_id = u.id GROUP BY u.id;",
    "class LRUCache:\n    def __init__(self, capacity: int) -> None:\n        self.d = {}",
    "parseHTTPResponse parse_http_response ParseHttpResponse",
    '#include <stdio.h>\nint main(void) { printf("%d\\n", 42); return 0; }',
    "   \n\t  ",
    "Café naïve résumé — «quoted» text with accents",
    "日本語のテキストと中文字符混合",
    "Привет, мир! Ελληνικά γράμματα",
    "🚀 launch the rocket 🔥 emoji 👩‍💻",
    "x = [i ** 2 for i in range(100) if i % 3 == 0]",
    "TODO(bob): fix the race condition in the connection pool when the server restarts",
    "0x7fff5fbff8a8 3.14159 1e-12 -42 255.255.255.0",
    "!!!??? ... ;;; {{{ }}} <<< >>> ### @@@",
    'if err != nil {\n\treturn fmt.Errorf("open %s: %w", path, err)\n}',
    "README: Install with pip, then run `codelamp index .` to build the search index.",
    "public static <T extends Comparable<T>> void sort(List<T> list) { Collections.sort(list); }",
    LONG_TEXT,
]
