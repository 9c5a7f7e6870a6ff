/*
  Ward shipped rules: ASP, ASPX and JSP webshells.
*/

rule ward_asp_eval_request : webshell asp
{
    meta:
        description = "ASP/ASPX webshell: eval/execute of request data"
        severity = "critical"
        attack = "T1505.003"
    strings:
        $a = /(eval|execute|executeglobal)\s*[\( ]\s*(\(\s*)?request\s*(\.\s*(item|form|querystring)\s*)?[\(\[]/ nocase
        $b = /eval\s*\(\s*Request\.Item\s*\[/ nocase
        $c = /execute\s*\(?\s*session\s*\(/ nocase
        $d = /(\w{1,20})\s*=\s*request\s*\(\s*["'][^"']{1,30}["']\s*\)/ nocase
        $e = /\n\s*(eval|execute)\s+\w{1,20}\s*\n/ nocase
        $f = /unsafe["']?\s*\)/ nocase
        $g = /System\.Convert\.FromBase64String/ nocase
        $h = /eval\s*\(/ nocase
    condition:
        filesize < 500KB and ($a or $b or $c or ($d and $e) or ($f and $h and ($g or $d)))
}

rule ward_asp_command_shell : webshell asp
{
    meta:
        description = "ASP/ASPX webshell: runs commands given in the request (WScript.Shell, Process.Start, cmd.exe)"
        severity = "critical"
        attack = "T1505.003"
    strings:
        $ws = "wscript.shell" nocase
        $ps1 = "ProcessStartInfo" nocase
        $ps2 = "Process.Start" nocase
        $ps3 = /New\s+Process\s*\(\s*\)/ nocase
        $cmd1 = "cmd.exe" nocase
        $cmd2 = /\.(exec|run)\s*\(/ nocase
        $cmd3 = /\/c\s*["']?\s*[&+]/ nocase
        $cmd4 = "StandardOutput" nocase
        $req = /request\s*(\.\s*(form|querystring|item|params))?\s*[\(\[]/ nocase
        $txt = /\.Text\b/ nocase
        $asp = /<%|runat\s*=\s*["']?server|IHttpHandler/ nocase
    condition:
        $asp and filesize < 500KB and ($ws or any of ($ps*)) and any of ($cmd*) and ($req or $txt)
}

rule ward_asp_obfuscated_execute : webshell dropper asp
{
    meta:
        description = "ASP webshell: execute of a decoded string (chr arithmetic, encoded script)"
        severity = "high"
        attack = "T1027"
    strings:
        $x = /execute\s*\(?\s*\w{1,20}\s*\(\s*["']%?\d/ nocase
        $enc = /LANGUAGE\s*=\s*["']?VBScript\.Encode/ nocase
        $utf7 = /codepage\s*=\s*65000/ nocase
        $dec = /Chr\s*\(\s*\w{1,10}\s*\(\s*\w{1,10}\s*\)\s*-\s*\d{1,3}\s*\)/ nocase
        $fso = "Scripting.FileSystemObject" nocase
        $xmlhttp = "Microsoft.XMLHTTP" nocase
        $stream = "ADODB.Stream" nocase
        $write = /CreateTextFile\s*\(/ nocase
        $exe = /execute(global)?\b/ nocase
        $asp = /<%|<script[^>]{0,40}runat/ nocase
    condition:
        $asp and filesize < 200KB and ($x or $utf7 or ($enc and filesize < 4KB) or ($dec and $exe) or ($fso and $xmlhttp and ($stream or $write)))
}

rule ward_asp_file_manager : webshell asp
{
    meta:
        description = "ASP webshell: file writer driven by the request"
        severity = "high"
        attack = "T1505.003"
    strings:
        $fso = "Scripting.FileSystemObject" nocase
        $ct = /CreateTextFile\s*\(\s*\w{1,20}\s*,/ nocase
        $req = /request\s*(\.\s*form\s*)?\(\s*["'][^"']{1,20}["']\s*\)/ nocase
        $pt = "PATH_TRANSLATED" nocase
        $attr = /attributes\s*=\s*39/ nocase
        $write = /\.write\s*\(?\s*request/ nocase
    condition:
        filesize < 100KB and $fso and $req and ($ct or $attr or $write or $pt)
}

rule ward_jsp_command_exec : webshell jsp
{
    meta:
        description = "JSP webshell: runs commands taken from the request"
        severity = "critical"
        attack = "T1505.003"
    strings:
        $rt = /Runtime\s*\.\s*getRuntime\s*\(\s*\)\s*\.\s*exec\s*\(/
        $pb = /new\s+ProcessBuilder\s*\(/
        $pi = "ProcessImpl"
        $req1 = /request\s*\.\s*getParameter\s*\(/
        $req2 = /request\s*\.\s*getHeader\s*\(/
        $req3 = /request\s*\.\s*getInputStream\s*\(/
        $req4 = /request\s*\.\s*getReader\s*\(/
        $sh = /["'](cmd\.exe|\/bin\/sh|\/bin\/bash|cmd|sh)["']/
        $bytes_cmd = /new\s+byte\s*\[\s*\]\s*\{\s*(99,\s*109,\s*100|47,\s*98,\s*105,\s*110)\s*,/
        $reflect = /getMethod\s*\(\s*["'](exec|start)["']/
    condition:
        filesize < 500KB and (($rt or $pb or $pi) and (any of ($req*) or $sh) or ($bytes_cmd and any of ($req*)) or ($reflect and $bytes_cmd))
}

rule ward_jsp_class_loader_shell : webshell jsp
{
    meta:
        description = "JSP webshell: defines classes or evaluates scripts received in the request (Behinder, Godzilla, script-engine shells)"
        severity = "critical"
        attack = "T1505.003"
    strings:
        $dc = "defineClass"
        $cl = "ClassLoader"
        $se = "ScriptEngineManager"
        $ev = /\.eval\s*\(/
        $cipher = /Cipher\s*\.\s*getInstance\s*\(/
        $b64 = /(BASE64Decoder|Base64\s*\.\s*getDecoder|decodeBuffer)/
        $req = /request\s*\.\s*(getParameter|getReader|getInputStream|getHeader)\s*\(/
        $sess = /session\s*\.\s*(getAttribute|putValue|setAttribute)\s*\(/
        $jsp = /<%|<jsp:/
    condition:
        filesize < 200KB and $jsp and (($dc and $cl and ($req or $sess) and ($cipher or $b64)) or ($se and $ev and $req))
}

rule ward_jsp_file_writer : webshell upload jsp
{
    meta:
        description = "JSP webshell: writes a file whose path or content comes from the request"
        severity = "high"
        attack = "T1505.003"
    strings:
        $fos = /new\s+(FileOutputStream|FileWriter|PrintWriter|RandomAccessFile)\s*\(\s*(new\s+File\s*\(\s*)?(request\s*\.\s*getParameter|application\s*\.\s*getRealPath\s*\(\s*request|\w{1,20}\s*\+?\s*request\s*\.\s*getParameter)/
        $req = /request\s*\.\s*getParameter\s*\(/
        $fos2 = /new\s+(java\.io\.)?(FileOutputStream|FileWriter)\s*\(/
        $url = /new\s+(java\.net\.)?URL\s*\(/
        $real = "getRealPath"
        $del = /\.delete\s*\(\s*\)/
        $list = /\.listFiles\s*\(\s*\)/
        $jsp = /<%|<jsp:/
        $servlet = /extends\s+HttpServlet/
    condition:
        filesize < 500KB and ($jsp or $servlet) and ($fos or ($req and $fos2 and $real and ($del or $list or $url or filesize < 3KB)))
}

rule ward_cfm_command_shell : webshell cfm
{
    meta:
        description = "ColdFusion webshell: cfexecute of a command from the form or URL"
        severity = "critical"
        attack = "T1505.003"
    strings:
        $x = "<cfexecute" nocase
        $r = /#(form|url)\.\w{1,20}#/ nocase
    condition:
        filesize < 200KB and $x and $r
}
