/*
  Ward shipped rules: defacement pages and gambling/casino spam injected into
  agency web portals (Vietnamese and English/Indonesian keywords, hidden link
  blocks, meta refresh and search-engine cloaking).
*/

private rule ward_markup
{
    strings:
        $h1 = "<html" nocase
        $h2 = "<body" nocase
        $h3 = "<div" nocase
        $h4 = "<a " nocase
        $h5 = "<title" nocase
        $h6 = "<?php" nocase
        $h7 = "document.write" nocase
        $h8 = "<meta" nocase
    condition:
        any of them
}

rule ward_defacement_page : defacement
{
    meta:
        description = "Defacement page (\"hacked by\", crew greetings, pwned titles)"
        severity = "critical"
        attack = "T1491.002"
    strings:
        $t = /<title>[^<]{0,100}(hacked|h4ck3d|hack3d|defaced|pwned|0wn3d|owned\s+by)[^<]{0,100}<\/title>/ nocase
        $s1 = /hacked\s+by\s*[:\-]?\s*(<[^>]{1,100}>\s*){0,4}[A-Za-z0-9_\-]{2,}/ nocase
        $s2 = /defaced\s+by/ nocase
        $s3 = /h4ck3d\s+by/ nocase
        $s4 = /bị\s+hack\s+bởi/ nocase
        $s5 = /hacked\s+by\s+\w+\s+team/ nocase
        $w1 = "greetz" nocase
        $w2 = "greets to" nocase
        $w3 = /your\s+(security|system)\s+is\s+(low|weak|shit|bad)/ nocase
        $w4 = /was\s+here/ nocase
        $w5 = /(cyber|hacker)\s*(army|team|crew)/ nocase
        $w6 = "just for fun" nocase
        $w7 = /security\s+is\s+(just\s+)?an\s+illusion/ nocase
        $w8 = /patch\s+your\s+(system|site|server)/ nocase
        $w9 = /we\s+are\s+(anonymous|legion)/ nocase
        $w10 = "expect us" nocase
    condition:
        ward_markup and filesize < 2MB and ($t or any of ($s*) or 3 of ($w*))
}

rule ward_gambling_spam_vi : spam gambling defacement
{
    meta:
        description = "Vietnamese gambling/betting spam injected in a web page (nhà cái, cá cược, tài xỉu, nổ hũ, ...)"
        severity = "high"
        attack = "T1491.002"
    strings:
        $k1 = "nhà cái" nocase
        $k2 = "cá cược" nocase
        $k3 = "tài xỉu" nocase
        $k4 = "nổ hũ" nocase
        $k5 = "đánh bài" nocase
        $k6 = "game bài" nocase
        $k7 = "xóc đĩa" nocase
        $k8 = "bắn cá" nocase
        $k9 = "lô đề" nocase
        $k10 = "soi cầu" nocase
        $k11 = "đá gà" nocase
        $k12 = "cược thể thao" nocase
        $k13 = "casino trực tuyến" nocase
        $k14 = "đổi thưởng" nocase
        $k15 = "Nhà Cái"
        $k16 = "Cá Cược"
        $k17 = "Tài Xỉu"
        $k18 = "Nổ Hũ"
        $u1 = /(nha-?cai|ca-?cuoc|tai-?xiu|no-?hu|danh-?bai|game-?bai|xoc-?dia|ban-?ca|lo-?de|soi-?cau|da-?ga)[a-z0-9\-]{0,30}\.(com|net|vip|club|bet|info|org|top|me|co|io|live|online|xyz|win|fun)\b/ nocase
        $u2 = /nh&agrave;\s+c&aacute;i|c&aacute;\s+c(&#432;|ư)(&#7907;|ợ)c/ nocase
    condition:
        ward_markup and filesize < 5MB and (2 of them)
}

rule ward_gambling_spam_en : spam gambling defacement
{
    meta:
        description = "English/Indonesian online-casino and slot spam injected in a web page (casino, slot gacor, judi online, ...)"
        severity = "high"
        attack = "T1491.002"
    strings:
        $k1 = "slot gacor" nocase
        $k2 = "situs judi" nocase
        $k3 = "judi online" nocase
        $k4 = "judi slot" nocase
        $k5 = "slot online" nocase
        $k6 = "casino online" nocase
        $k7 = "online casino" nocase
        $k8 = "sbobet" nocase
        $k9 = "maxwin" nocase
        $k10 = "togel" nocase
        $k11 = "agen slot" nocase
        $k12 = "rtp live" nocase
        $k13 = "pragmatic play" nocase
        $k14 = "joker123" nocase
        $k15 = "slot88" nocase
        $k16 = "bandar" nocase
        $k17 = "sportsbook" nocase
        $k18 = "live casino" nocase
        $k19 = "no deposit bonus" nocase
        $k20 = "free spins" nocase
        $k21 = "poker online" nocase
        $k22 = "gacor" nocase
    condition:
        ward_markup and filesize < 5MB and 3 of them
}

rule ward_hidden_spam_links : spam gambling
{
    meta:
        description = "Hidden block of links with gambling/casino keywords (SEO spam injection)"
        severity = "critical"
        attack = "T1491.002"
    strings:
        $hide1 = /<(div|span|p|section|ul)[^>]{0,200}style\s*=\s*["'][^"']{0,200}(display\s*:\s*none|visibility\s*:\s*hidden|(left|top|text-indent)\s*:\s*-\d{3,}|font-size\s*:\s*0(px)?\s*[;"']|height\s*:\s*0(px)?\s*;\s*overflow\s*:\s*hidden)/ nocase
        $hide2 = /<marquee[^>]{0,100}(width|height)\s*=\s*["']?[01](px)?["']?/ nocase
        $a = /<a\s[^>]{0,200}href\s*=\s*["']?https?:\/\//
        $g1 = /(casino|slot|judi|togel|sbobet|gacor|poker|betting|nhà cái|cá cược|tài xỉu|nổ hũ|nha-?cai|ca-?cuoc|bet88|789bet|w88|fb88|fun88|m88|kubet|jun88|new88|shbet|hi88|f8bet|8xbet|one88|mb66|okvip)/ nocase
    condition:
        filesize < 5MB and any of ($hide*) and #a >= 3 and #g1 >= 2
}

rule ward_meta_refresh_gambling : spam gambling defacement
{
    meta:
        description = "Redirect (meta refresh or script) to a gambling/casino site"
        severity = "critical"
        attack = "T1491.002"
    strings:
        $r1 = /<meta[^>]{0,100}http-equiv\s*=\s*["']?refresh["']?[^>]{0,100}url\s*=\s*["']?https?:\/\/[^"'>]{0,100}/ nocase
        $r2 = /(window\.|document\.|top\.)?location(\.href)?\s*(=|\.replace\s*\(|\.assign\s*\()\s*["']https?:\/\/[^"']{0,100}/ nocase
        $g = /(casino|slot|judi|togel|sbobet|gacor|betting|nhacai|nha-cai|cacuoc|ca-cuoc|taixiu|tai-xiu|nohu|no-hu|bet88|789bet|w88|fb88|fun88|m88|kubet|jun88|new88|shbet|hi88|f8bet|8xbet|one88|mb66|okvip|nhà cái|cá cược)/ nocase
    condition:
        filesize < 2MB and for any i in (1..#r1): ($g in (@r1[i] .. @r1[i] + !r1[i]))
        or for any i in (1..#r2): ($g in (@r2[i] .. @r2[i] + !r2[i]))
}

rule ward_seo_cloaking : spam gambling php
{
    meta:
        description = "Search-engine cloaking: different content for crawlers (the Japanese/gambling keyword hack)"
        severity = "high"
        attack = "T1491.002"
    strings:
        $ua = /\$_SERVER\s*\[\s*["']HTTP_USER_AGENT["']\s*\]/
        $ref = /\$_SERVER\s*\[\s*["']HTTP_REFERER["']\s*\]/
        $bot = /(googlebot|bingbot|baiduspider|yandexbot|coccocbot|slurp)/ nocase
        $get1 = /file_get_contents\s*\(\s*["']https?:\/\//
        $get2 = "curl_exec" nocase
        $get3 = /file_get_contents\s*\(\s*\$\w{1,20}\s*\.\s*\$_SERVER/
        $goog = /(google|bing|yahoo|coccoc)\./ nocase
        $php = "<?"
    condition:
        $php and filesize < 200KB and $ua and $bot and (any of ($get*) or ($ref and $goog and #bot > 1))
}
