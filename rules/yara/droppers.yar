/*
  Ward shipped rules: obfuscated droppers and backdoor loaders (any web language).
*/

rule ward_dropper_remote_payload_written : dropper php
{
    meta:
        description = "Dropper: downloads a remote payload and writes it as a script"
        severity = "high"
        attack = "T1105"
    strings:
        $get1 = /file_get_contents\s*\(\s*["']https?:\/\//
        $get2 = "curl_exec" nocase
        $get3 = /fopen\s*\(\s*["']https?:\/\//
        $get4 = /copy\s*\(\s*["']https?:\/\//
        $put1 = /file_put_contents\s*\(/
        $put2 = /fwrite\s*\(/
        $ext = /["'][^"']{0,60}\.(php|phtml|php5|phar|asp|aspx|jsp)["']/
        $php = "<?"
    condition:
        $php and filesize < 30KB and any of ($get*) and any of ($put*) and $ext
        and not (filesize > 20KB)
}

rule ward_dropper_long_encoded_blob_exec : dropper
{
    meta:
        description = "Dropper: a long encoded blob decoded and executed"
        severity = "high"
        attack = "T1027"
    strings:
        $blob = /["'][A-Za-z0-9+\/]{1000}/
        $run1 = /(eval|assert|create_function)\s*\(/ nocase
        $run2 = /(execute|executeglobal)\s*[\( ]/ nocase
        $dec = /(base64_decode|gzinflate|gzuncompress|str_rot13|FromBase64String|atob)\s*\(/ nocase
    condition:
        filesize < 2MB and $blob and $dec and any of ($run*) and #blob < 50
}

rule ward_dropper_js_obfuscated_redirect : dropper spam js
{
    meta:
        description = "Injected JavaScript: obfuscated code that writes a script or redirects"
        severity = "medium"
        attack = "T1027"
    strings:
        $u = /document\.write\s*\(\s*unescape\s*\(\s*["']%3[cC]/
        $fc = /eval\s*\(\s*String\.fromCharCode\s*\(\s*\d{2,3}\s*,\s*\d{2,3}\s*,/
        $atob = /eval\s*\(\s*atob\s*\(\s*["'][A-Za-z0-9+\/=]{40}/
    condition:
        filesize < 2MB and any of them
}
