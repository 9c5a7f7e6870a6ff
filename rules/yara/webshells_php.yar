/*
  Ward shipped rules: PHP webshells.
  Every rule has `description` and `severity` metadata (low|medium|high|critical);
  tags say the family of threat. Written for Ward (Apache-2.0), not copied from
  community sets.
*/

private rule ward_php_file
{
    strings:
        $open = "<?php" nocase
        $short = /<\?(=|\s)/
        $script = /<script[^>]{0,40}language\s*=\s*["']?php/ nocase
    condition:
        any of them
}

private rule ward_php_request
{
    strings:
        $r1 = /\$_(GET|POST|REQUEST|COOKIE|FILES|SERVER\s*\[\s*["']HTTP_)/
        $r2 = "php://input"
        $r3 = "getallheaders" nocase
        $r4 = /\$GLOBALS\s*\[\s*["']_(GET|POST|REQUEST|COOKIE)/
        $r5 = /\$\{\s*["']_(GET|POST|REQUEST|COOKIE)/
        $r6 = /['"]_['"]\s*\.\s*['"](P['"]\s*\.\s*['"]O|G['"]\s*\.\s*['"]E|R['"]\s*\.\s*['"]E|POST|GET|REQUEST)/
    condition:
        any of them
}

rule ward_php_eval_request : webshell php
{
    meta:
        description = "PHP webshell: code execution function called on request data"
        severity = "critical"
        attack = "T1505.003"
    strings:
        $e = /(eval|assert|system|exec|shell_exec|passthru|popen|proc_open|pcntl_exec|create_function|include|require|include_once|require_once)\s*(\/\*[^*]{0,40}\*\/\s*)?\(\s*(@\s*)?(\(\s*string\s*\)\s*)?((stripslashes|trim|base64_decode|str_rot13|gzinflate|gzuncompress|gzdecode|urldecode|rawurldecode|hex2bin|strrev|htmlspecialchars_decode)\s*\(\s*)*\$_(GET|POST|REQUEST|COOKIE|SERVER|FILES)\b/ nocase
        $g = /(eval|assert|system|passthru|shell_exec)\s*\(\s*\$GLOBALS\s*\[\s*["']_(GET|POST|REQUEST|COOKIE)/ nocase
        $i = /(eval|assert)\s*\(\s*(@\s*)?((base64_decode|gzinflate|str_rot13)\s*\(\s*)*(file_get_contents\s*\(\s*["']php:\/\/input|getallheaders\s*\(\s*\)\s*\[)/ nocase
    condition:
        ward_php_file and any of them
}

rule ward_php_request_called_as_function : webshell php
{
    meta:
        description = "PHP webshell: request data called as a function"
        severity = "critical"
        attack = "T1505.003"
    strings:
        $a = /\$_(GET|POST|REQUEST|COOKIE)\s*\[\s*[^\]]{1,40}\]\s*\(/
        $b = /\$\{\s*["']?_(GET|POST|REQUEST|COOKIE)["']?\s*\}\s*\[[^\]]{1,40}\]\s*\(/
        $c = /`\s*\$_(GET|POST|REQUEST|COOKIE)\s*\[/
        $d = /\$_(GET|POST|REQUEST|COOKIE)\s*\[\s*[^\]]{1,40}\]\s*=\s*=[^;]{1,60}&&\s*\$_(GET|POST|REQUEST|COOKIE)/
    condition:
        ward_php_file and any of them
}

rule ward_php_preg_replace_eval : webshell php
{
    meta:
        description = "PHP webshell: regex replacement with the /e (eval) modifier"
        severity = "critical"
        attack = "T1505.003"
    strings:
        $p = /(preg_replace|preg_filter)\s*\(\s*["'][\/|#!@~%][^"'\n]{0,200}[\/|#!@~%][imsxuADSUXJ]{0,6}e[imsxuADSUXJ]{0,6}["']\s*,/
        $m = /mb_ereg_replace\s*\([^;]{1,200},\s*["'][a-z]{0,4}e[a-z]{0,4}["']\s*\)/
        $w = /=>\s*["']\|\.\*\|e["']/
    condition:
        ward_php_file and any of them
}

rule ward_php_callback_with_request : webshell php
{
    meta:
        description = "PHP webshell: request data passed through a callback-taking function"
        severity = "high"
        attack = "T1505.003"
    strings:
        $cb = /(call_user_func|call_user_func_array|array_map|array_filter|array_walk|array_walk_recursive|array_reduce|array_udiff|array_udiff_assoc|array_intersect_uassoc|array_intersect_ukey|array_diff_ukey|usort|uasort|uksort|register_shutdown_function|register_tick_function|forward_static_call|forward_static_call_array|iterator_apply|ob_start)\s*\(/ nocase
        $ass = /["']?(assert|eval|system|passthru|shell_exec)["']?\s*,\s*(array\s*\(\s*)?\$_(GET|POST|REQUEST|COOKIE)/ nocase
        $req_cb = /\$_(GET|POST|REQUEST|COOKIE)\s*\[[^\]]{1,40}\]\s*(=>|,)/
        $e_req = /\$\w{1,20}\s*=\s*\$_(GET|POST|REQUEST|COOKIE)\s*\[[^\]]{1,40}\]\s*;/
    condition:
        ward_php_file and filesize < 20KB and $cb and ($ass or ($e_req and $req_cb) or (#req_cb >= 1 and #cb >= 1 and filesize < 2KB))
}

rule ward_php_tiny_dynamic_call : webshell php
{
    meta:
        description = "PHP webshell: tiny script calling a variable function with request data"
        severity = "high"
        attack = "T1505.003"
    strings:
        $call = /\$\{?[A-Za-z_][A-Za-z0-9_]{0,30}\}?(\s*\[[^\]]{1,20}\])?\s*\(\s*(@\s*)?(\$|getallheaders|base64_decode|file_get_contents|\$_)/
        $name1 = /['"]as['"]\s*\.\s*['"]s/ nocase
        $name2 = /\.\s*['"]s['"]\s*\.\s*['"]e['"]\s*\.\s*['"]r['"]\s*\.\s*['"]t['"]/ nocase
        $name3 = "sert" nocase
        $name4 = /(strrev|str_rot13)\s*\(\s*['"](tressa|lave|nffreg|riny)['"]/ nocase
        $name5 = /['"](YXNzZXJ0|ZXZhbA|c3lzdGVt)/
        $name6 = /\(\s*['"][^'"a-zA-Z0-9]{1,3}['"]\s*\^\s*['"][^'"a-zA-Z0-9]{1,3}['"]\s*\)/
        $name7 = "assert" nocase
        $name8 = /base64_["']\s*\.\s*["']decode/ nocase
        $name9 = /\$\$[A-Za-z_]/
    condition:
        ward_php_file and ward_php_request and filesize < 3KB and $call and any of ($name*)
}

rule ward_php_request_to_variable_function : webshell php
{
    meta:
        description = "PHP webshell: function name and argument both taken from the request"
        severity = "high"
        attack = "T1505.003"
    strings:
        $f = /\$([A-Za-z_][A-Za-z0-9_]{0,20})\s*=\s*\$_(GET|POST|REQUEST|COOKIE)\s*\[[^\]]{1,40}\]\s*;/
        $call = /\n\s*\$[A-Za-z_][A-Za-z0-9_]{0,20}\s*\(\s*\$[A-Za-z_]/
        $cb = /(array_map|array_filter|array_walk|array_reduce|register_tick_function|array_udiff|usort|uasort)\s*\(\s*[^;]{0,80}\$[A-Za-z_]/
    condition:
        ward_php_file and filesize < 3KB and $f and ($call or $cb)
}

rule ward_php_input_stream_eval : webshell php
{
    meta:
        description = "PHP webshell: request body decrypted or decoded and executed (Behinder/Godzilla style)"
        severity = "critical"
        attack = "T1505.003"
    strings:
        $in = "php://input"
        $sess = /\$_SESSION\s*\[\s*['"][A-Za-z]{1,12}['"]\s*\]\s*=\s*\$/
        $dec1 = "openssl_decrypt" nocase
        $dec2 = /base64_["']?\s*\.?\s*["']?decode/ nocase
        $x = /\^\s*\$key\s*\[/ nocase
        $run1 = /eval\s*\(/ nocase
        $run2 = /assert\s*\(/ nocase
        $run3 = /new\s+\w+\s*\(\s*\)\s*\)?\s*;?/
        $run4 = /@?\$\w{1,20}\s*\(\s*\$\w{1,20}\s*\.?\s*["']?["']?\s*\)/
    condition:
        ward_php_file and filesize < 20KB and ($in or $sess) and ($dec1 or $dec2 or $x) and any of ($run*)
}

rule ward_php_obfuscated_eval_chain : webshell dropper php
{
    meta:
        description = "PHP dropper: eval of a decoded or decompressed payload"
        severity = "critical"
        attack = "T1027"
    strings:
        $chain = /(eval|assert)\s*\(\s*(\/\*[^*]{0,40}\*\/\s*)?(@\s*)?(gzinflate|gzuncompress|gzdecode|str_rot13|base64_decode|strrev|convert_uudecode|hex2bin|rawurldecode|urldecode|pack)\s*\(/ nocase
        $fn = /eval\s*\(\s*\$?[A-Za-z_]{1,20}\s*\(\s*["'][A-Za-z0-9+\/=]{200}/ nocase
        $cf = /create_function\s*\(\s*["']{2}\s*,\s*(\$|base64_decode|gzinflate|str_rot13)/ nocase
    condition:
        ward_php_file and any of them
}

rule ward_php_hex_escaped_calls : webshell dropper php
{
    meta:
        description = "PHP dropper: function names hidden in hex/octal escapes or chr() chains next to eval"
        severity = "high"
        attack = "T1027"
    strings:
        $hex = /(\\x[0-9a-fA-F]{2}){10}/
        $oct = /(\\[0-7]{3}){10}/
        $chr = /(chr\s*\(\s*\d{2,3}\s*\)\s*\.\s*){6}/ nocase
        $glob = /\$GLOBALS\s*\[\s*["'][^"']{1,30}["']\s*\]\s*\(/
        $run = /(eval|assert|create_function|preg_replace|call_user_func)\s*\(/ nocase
        $dec = /(base64_decode|gzinflate|str_rot13|gzuncompress)/ nocase
    condition:
        ward_php_file and ((#hex > 3 or #oct > 3 or $chr) and ($run or $glob) and ($dec or $glob or #hex > 10))
}

rule ward_php_upload_shell : webshell upload php
{
    meta:
        description = "PHP upload shell: saves an uploaded file under the name the client chose"
        severity = "high"
        attack = "T1505.003"
    strings:
        $direct = /(move_uploaded_file|copy)\s*\(\s*\$_FILES\s*\[[^\]]{1,40}\]\s*\[\s*["']tmp_name["']\s*\]\s*,\s*(\$_(POST|GET|REQUEST)\s*\[[^\]]{1,40}\]\s*\.\s*)?["']?[^;]{0,40}\$_FILES\s*\[[^\]]{1,40}\]\s*\[\s*["']name["']\s*\]\s*\)/
        $form = "multipart/form-data" nocase
        $mv = "move_uploaded_file" nocase
        $files = "$_FILES"
        $self = /\$_SERVER\s*\[\s*["']PHP_SELF/
        $cwd = "getcwd()"
    condition:
        ward_php_file and ($direct or (filesize < 4KB and $form and $mv and $files and ($self or $cwd or filesize < 2KB)))
}

rule ward_php_gif_header_script : webshell upload php
{
    meta:
        description = "Image header followed by PHP code (upload filter bypass)"
        severity = "high"
        attack = "T1505.003"
    strings:
        $php = /<\?(php|=)/ nocase
        $exec = /(eval|assert|system|passthru|shell_exec|move_uploaded_file|base64_decode|\$_(GET|POST|REQUEST))/ nocase
    condition:
        (uint32(0) == 0x38464947 or uint16(0) == 0xd8ff or uint32(0) == 0x474e5089) and $php and $exec
        or (uint32(0) == 0x38464947 and filesize < 100KB and $exec and #exec > 3)
}

rule ward_php_known_families : webshell php
{
    meta:
        description = "Known PHP webshell family (c99, r57, WSO, b374k, IndoXploit, Alfa, Weevely, phpspy, ...)"
        severity = "critical"
        attack = "T1505.003"
    strings:
        $f1 = "c99shell" nocase
        $f2 = "r57shell" nocase
        $f3 = "FilesMan"
        $f4 = "b374k" nocase
        $f5 = "IndoXploit" nocase
        $f6 = "ALFA_DATA"
        $f7 = "wso_version" nocase
        $f8 = "Web Shell by oRb" nocase
        $f9 = "phpspy" nocase
        $f10 = "AnonymousFox" nocase
        $f11 = "Mini Shell" nocase
        $f12 = "c999shell" nocase
        $f13 = "Sh3ll" nocase
        $f14 = "uname -a" nocase
        $f15 = "safe_mode" nocase
        $f16 = "disable_functions" nocase
        $f17 = "Ani-Shell" nocase
        $f18 = "Dive Shell" nocase
        $f19 = /\$k[hf]\s*=\s*["'][0-9a-f]{8}["']\s*;/
        $f20 = "PHP Shell" nocase
        $f21 = "shell_exec" nocase
        $f22 = "passthru" nocase
        $f23 = "posix_getpwuid" nocase
        $f24 = "php_uname" nocase
        $f25 = "cmd.exe" nocase
        $f26 = "/etc/passwd"
        $strong1 = "c99shell" nocase
        $strong2 = "r57shell" nocase
        $strong3 = "b374k" nocase
        $strong4 = "IndoXploit" nocase
        $strong5 = "ALFA_DATA"
        $strong6 = "wso_version" nocase
    condition:
        ward_php_file and (any of ($strong*) or 5 of ($f*))
}

rule ward_php_file_manager_shell : webshell php
{
    meta:
        description = "PHP file manager / command shell: command execution, file writes and server probing driven by the request"
        severity = "high"
        attack = "T1505.003"
    strings:
        $x1 = /\b(shell_exec|passthru|proc_open|popen|system|exec)\s*\(\s*\$/ nocase
        $w1 = /(fwrite|file_put_contents|fputs)\s*\(/ nocase
        $w2 = "move_uploaded_file" nocase
        $w3 = /unlink\s*\(\s*\$_(GET|POST|REQUEST)/ nocase
        $p1 = "php_uname" nocase
        $p2 = "posix_getpwuid" nocase
        $p3 = "disk_free_space" nocase
        $p4 = /ini_get\s*\(\s*["'](safe_mode|disable_functions|open_basedir)/ nocase
        $p5 = "getmyuid" nocase
        $p6 = /(opendir|scandir|readdir)\s*\(/ nocase
        $r = /\$_(GET|POST|REQUEST)\s*\[/
    condition:
        ward_php_file and $r and $x1 and any of ($w*) and 2 of ($p*)
}

rule ward_php_exec_request_variable : webshell php
{
    meta:
        description = "PHP command shell: a shell function runs a command taken from the request or a request header"
        severity = "critical"
        attack = "T1505.003"
    strings:
        $assign = /\$[A-Za-z_]\w{0,20}\s*=\s*\(?\s*(trim\s*\(\s*|stripslashes\s*\(\s*|urldecode\s*\(\s*|base64_decode\s*\(\s*)?\$(_(GET|POST|REQUEST|COOKIE)|HTTP_(GET|POST)_VARS)\s*\[/
        $exec = /[^_a-zA-Z>:$](system|shell_exec|passthru|popen|proc_open|pcntl_exec)\s*\(\s*["']?\$[A-Za-z_]/ nocase
        $exec_cat = /[^_a-zA-Z>:$](system|shell_exec|passthru|popen|proc_open|exec)\s*\(\s*["'][^"']{1,40}["']\s*\.\s*\$/ nocase
        $env = /(system|passthru|shell_exec|exec|popen|eval|assert)\s*\(\s*getenv\s*\(\s*["']HTTP_/ nocase
        $direct = /[^_a-zA-Z>:$](system|shell_exec|passthru|popen|proc_open|exec)\s*\(\s*["']?\s*\\?\$(_(GET|POST|REQUEST|COOKIE)|HTTP_(GET|POST)_VARS)/ nocase
        $direct_cat = /[^_a-zA-Z>:$](system|shell_exec|passthru|popen|proc_open|exec)\s*\(\s*["'][^"']{1,40}["']\s*\.\s*\$_(GET|POST|REQUEST|COOKIE|FILES)\s*\[/ nocase
        $title = /<title>[^<]{0,60}(shell|backdoor|cmd)/ nocase
        $form_cmd = /name\s*=\s*["']?-?(cmd|command|c|exec)["'\s>]/ nocase
    condition:
        ward_php_file and filesize < 200KB and ($env or $direct or $direct_cat or ($assign and ($exec or $exec_cat)) or (($exec or $exec_cat) and ($title or $form_cmd)))
}

rule ward_php_reverse_shell : webshell backdoor php
{
    meta:
        description = "PHP reverse or bind shell: a socket wired to a shell process"
        severity = "critical"
        attack = "T1059.004"
    strings:
        $sock1 = "fsockopen" nocase
        $sock2 = "socket_create" nocase
        $sock3 = "stream_socket_client" nocase
        $sock4 = "socket_accept" nocase
        $sh1 = "/bin/sh"
        $sh2 = "/bin/bash"
        $sh3 = "cmd.exe" nocase
        $p1 = "proc_open" nocase
        $p2 = "shell_exec" nocase
        $p3 = /[^_a-zA-Z>](system|passthru|exec|popen)\s*\(/ nocase
    condition:
        ward_php_file and filesize < 100KB and any of ($sock*) and any of ($sh*) and any of ($p*)
}

rule ward_php_dynamic_call_on_request : webshell php
{
    meta:
        description = "PHP webshell: a dynamically named function applied to request data"
        severity = "high"
        attack = "T1505.003"
    strings:
        // `$f(`, `$a['x'](` or `f(...)(` applied to request data; `(int) ($_GET` (a cast) is not a call.
        $a = /(\$[A-Za-z_]\w{0,30}\s*|\]\s*|\))\(\s*(@\s*)?\$_(GET|POST|REQUEST|COOKIE)\s*\[/
        $b = /(eval|assert)\s*\(\s*\$[A-Za-z_]\w{0,20}\s*\(\s*\$[A-Za-z_]\w{0,20}\s*\)\s*\)/ nocase
        $c = /eval\s*\(\s*["'][^"']{0,10}["']\s*\.\s*\$[A-Za-z_]\w{0,20}\s*\)/ nocase
        $d = /\$\{\s*\$[A-Za-z_]\w{0,20}\s*\}\s*\[/
    condition:
        ward_php_file and filesize < 50KB and ($a or $b or ($c and $d))
}

rule ward_php_obfuscated_builders : webshell dropper php
{
    meta:
        description = "PHP webshell: code or function names assembled at run time (chr aliases, junk-stripped strings, bitwise-not text, XPath/XSL php:function, request variables promoted to globals)"
        severity = "high"
        attack = "T1027"
    strings:
        $chr_alias = /(\$\w{1,10}\(\d{2,3}\)\s*\.\s*){8}/
        $lambda = /\$\w{1,20}\s*=\s*\$\w{1,20}\s*\(\s*['"]{2}\s*,\s*\$\w{1,20}\s*\)\s*;\s*@?\$\w{1,20}\s*\(\s*\)/
        $not = /\.=\s*~\s*\(\s*\$\w{1,10}\s*[\{\[]/
        $xpath = /php:function(String)?\s*\(\s*['"](system|exec|passthru|shell_exec|assert|eval|popen)['"]/ nocase
        $globals = /array\s*\(\s*['"]_(COOKIE|POST|GET|REQUEST)['"]\s*,\s*['"]_(COOKIE|POST|GET|REQUEST)['"]/ nocase
        $varvar = /\$\$\w{1,20}\s*=\s*\$\w{1,20}/
        $run = /(eval|assert)\s*\(/ nocase
    condition:
        ward_php_file and filesize < 50KB and ($chr_alias or $lambda or #not >= 3 or $xpath or ($globals and $varvar and $run))
}
