# The event as it was received, as indented JSON.
package postee.rawmessage.json

title := "-"

# postee adds input.postee for templates; it is not part of the event.
result := jsonformat(object.remove(input, {"postee"}))
