return "lua extension"
