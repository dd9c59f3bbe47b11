package contact

// commonWords are ordinary English words that follow an app's name or
// stand before "at" in sentences that give no contact detail: "my
// WhatsApp is broken", "text me on WhatsApp tomorrow", "meet me at the
// gate". A handle or an e-mail's local part is rarely one of them.
var commonWords = setOf(`
a about above after again against all almost alone along already also always am an and another any anyone
anything anyway anywhere are around as ask asked at away back bad be because been before behind being below
best better between both broke broken busy but by can cannot cant could did didnt do does doesnt doing done dont
down during each early either else enough even ever every everyone everything except far few fine first for from
full get gets getting give go goes going gone good got great had has hasnt have havent having he her here hers
herself him himself his how however i if im in instead into is isnt it its itself just keep kind last late
later least less let like likely little long lot lots made make many may maybe me mean might mine more most much
must my myself near need needs never new next nice no nobody none nor not nothing now of off often ok okay old
on once one only or other others our ours out over own please plus pretty quite rather ready really right
same see seen she should since so some someone something sometimes soon still such sure than thank thanks that
thats the their them then there these they thing things this those though through thru till to today together
tomorrow tonight too toward under until up upon us use used very via want wants was wasnt way we well went
were what whatever when where whether which while who whole whom whose why will with within without wont would
yes yet you your yours yourself

hi hello hey bye cheers ok yeah yep nope sorry welcome morning afternoon evening night noon midnight week
weekend month year day days hour hours minute minutes time times monday tuesday wednesday thursday friday
saturday sunday mon tue tues wed thu thur thurs fri sat sun january february march april june july august
september october november december jan feb mar apr jun jul aug sep sept oct nov dec asap am pm

work working works job jobs home house site office place store shop gate door front back garage kitchen bathroom
garden yard roof floor wall walls room rooms pipe pipes sink tap leak water paint fence window windows car van
truck address street road avenue park station airport school there here work place location price quote cost
costs invoice payment paid pay money cash card deposit hour rate estimate budget tools tool parts material
materials photo photos picture pictures pic pics video app chat message messages phone number email mail
account profile page group call calls text texts link

down dead slow weak strong fast full empty open closed off on offline online private public blocked banned
hacked new old broken working fine great bad better worse good best free busy available available gone lost
dead weird buggy glitchy acting
`)
